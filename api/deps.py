"""Dependency aliases shared by the routers: the context, and one alias per set of roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth import Allow, Principal
from api.context import AppContext, get_context
from registry.models import ROLES

ContextDep = Annotated[AppContext, Depends(get_context)]

Administrator = Annotated[Principal, Depends(Allow("administrator"))]
AdminReader = Annotated[Principal, Depends(Allow("administrator", "auditor"))]
ItemReader = Annotated[Principal, Depends(Allow("administrator", "classifier", "auditor"))]
Classifier = Annotated[Principal, Depends(Allow("classifier"))]
LabelPrinter = Annotated[Principal, Depends(Allow("administrator", "classifier"))]
Requester = Annotated[
    Principal,
    Depends(Allow("custodian", "administrator", "classifier", "approver", "destruction_operator")),
]
ApprovalReader = Annotated[
    Principal,
    Depends(Allow("approver", "administrator", "auditor", "custodian", "classifier", "destruction_operator")),
]
Approver = Annotated[Principal, Depends(Allow("approver"))]
Guard = Annotated[Principal, Depends(Allow("guard"))]
SiteWatcher = Annotated[Principal, Depends(Allow("guard", "administrator", "auditor"))]
DestructionOperator = Annotated[Principal, Depends(Allow("destruction_operator"))]
DestructionReader = Annotated[Principal, Depends(Allow("destruction_operator", "witness", "auditor"))]
Auditor = Annotated[Principal, Depends(Allow("auditor"))]
MovementExporter = Annotated[Principal, Depends(Allow("auditor", "administrator"))]
AnySignedIn = Annotated[Principal, Depends(Allow(*ROLES))]
