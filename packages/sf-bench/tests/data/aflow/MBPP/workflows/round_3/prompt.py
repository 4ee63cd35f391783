CODE_PROMPT = """Write a correct, simple Python implementation; think about edge cases first.
"""
