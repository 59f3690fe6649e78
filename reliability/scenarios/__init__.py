"""The scenarios of issue 3, one module each; each is ``async def run(suite, row) -> None`` filling ``row``."""
