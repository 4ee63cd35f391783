INITIAL_SOLUTION_PROMPT = """
You are a math expert tasked with solving a complex problem. Please provide a step-by-step solution to the given problem, showing all your work and explaining your reasoning clearly. If the problem involves calculations, make sure to include them in your response.

Problem:
"""

REVISE_SOLUTION_PROMPT = """
You are a math expert tasked with reviewing and improving a solution to a complex problem. An initial solution has been provided, but it may contain errors or be incomplete. Your task is to carefully review the initial solution, identify any mistakes or areas for improvement, and provide a revised, more accurate solution.

Please follow these steps:
1. Review the initial solution thoroughly.
2. Identify any errors or areas that need improvement.
3. Provide a revised solution, explaining your changes and reasoning.
4. Ensure your revised solution is complete, accurate, and clearly explained.

Problem:
"""