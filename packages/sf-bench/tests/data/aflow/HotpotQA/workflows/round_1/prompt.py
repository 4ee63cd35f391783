# XXX_PROMPT = """
#
# Solve it.
#
# """

