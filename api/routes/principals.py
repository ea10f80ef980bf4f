import secrets

from fastapi import APIRouter, status

from api.deps import AdminDep, SessionDep, hash_token
from api.models import Principal as PrincipalOut
from api.schemas import PrincipalIn
from db.models import Principal, new_id

router = APIRouter(prefix="/v1/principals", tags=["principals"])


# Returns the dict (its model validates it on the way out): tests build fixtures by calling it.
@router.post("", status_code=status.HTTP_201_CREATED, response_model=PrincipalOut)
def create_principal(body: PrincipalIn, session: SessionDep, _: AdminDep) -> dict[str, str]:
    """Create an approver / escalation contact. The token is shown once and stored hashed."""
    token = f"tgp_{secrets.token_urlsafe(32)}"
    principal = Principal(
        id=new_id("prn"), name=body.name, email=body.email, token_hash=hash_token(token)
    )
    session.add(principal)
    session.commit()
    return {"id": principal.id, "name": principal.name, "email": principal.email, "token": token}
