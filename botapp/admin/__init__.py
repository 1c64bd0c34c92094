"""Django admin персонала: деньги — только чтение, баланс меняется только действием через журнал."""

from botapp.admin import billing, catalog, errors, generation, users

__all__ = ["billing", "catalog", "errors", "generation", "users"]
