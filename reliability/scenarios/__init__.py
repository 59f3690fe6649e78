"""The reliability scenarios, one module each; each is ``async def run(suite, row) -> None`` filling ``row``."""
