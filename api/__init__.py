"""The web API and pages: administrators, approvers, guard stations, destruction centres and auditors.

`create_app(settings, session_factory=..., bus=..., control=...)` builds the FastAPI app; the API reads the
register, writes through the register's services, and sends commands to the running site through
`controllers.control.SiteControl`. It never opens a device.
"""

from api.app import create_app
from api.server import uvicorn_config
from api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "uvicorn_config"]
