ANSWER_PROMPT = """Read the passage, then answer the question with the exact span or number, thinking step by step."""
