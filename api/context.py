"""What every route may use: settings, the register's session factory, the live bus and site control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from api.settings import ApiSettings
from controllers.bus import LiveBus
from controllers.control import CentreDesk, SiteControl

if TYPE_CHECKING:
    from api.auth import Authenticator


class ControlUnavailable(Exception):
    """The API runs without a connected site (control=None): device commands cannot be served."""


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: ApiSettings
    factory: sessionmaker[Session]
    bus: LiveBus | None
    control: SiteControl | None
    auth: Authenticator
    desk: CentreDesk | None = None  # at the centre: every site's alarm book and commands to its edge

    def require_desk(self) -> CentreDesk:
        if self.desk is None:
            raise ControlUnavailable("this is not a centre: there is no desk of many sites' alarm books")
        return self.desk

    def require_control(self) -> SiteControl:
        if self.control is None:
            raise ControlUnavailable(
                "no site control is connected to this API; door and device commands are unavailable"
            )
        return self.control

    def require_bus(self) -> LiveBus:
        if self.bus is None:
            raise ControlUnavailable("no live bus is connected to this API; the live feed is unavailable")
        return self.bus


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context
