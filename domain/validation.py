"""Case validation: data the API accepts but a partner cannot work without.

Raises CaseValidationNeedsInfo for the creditor until the case is corrected.
"""

from __future__ import annotations

from domain.accounts import BankAccountRef
from domain.cases import CaseSubmission, ValidationIssue


def validate_case(
    submission: CaseSubmission, bank_account: BankAccountRef | None
) -> list[ValidationIssue]:
    """Missing or inconsistent data, in a stable order (empty when the case is fine)."""
    issues: list[ValidationIssue] = []
    debtor = submission.debtor
    has_postal_address = bool(debtor.address and debtor.city and debtor.zip_code)
    if not has_postal_address and not debtor.email:
        issues.append(
            ValidationIssue(
                field="debtor",
                message="the debtor needs a postal address (address, city, zipCode) or an e-mail",
            )
        )
    if debtor.type.value == "Company" and not debtor.contact_person and not debtor.email:
        issues.append(
            ValidationIssue(
                field="debtor.contactPerson",
                message="a company debtor needs a contact person or an e-mail",
            )
        )
    if bank_account is not None and bank_account.currency_code != submission.currency_code:
        issues.append(
            ValidationIssue(
                field="bankAccountId",
                message=f"the bank account is in {bank_account.currency_code}, "
                f"the claim in {submission.currency_code}",
            )
        )
    return issues
