"""Small integer codes shared by the snapshot, the kernels and the reference."""

from __future__ import annotations

from tracking.model import APPROVAL_KINDS, ITEM_STATUSES

SIDE_NONE, SIDE_INSIDE, SIDE_OUTSIDE, SIDE_IGNORE = 0, 1, 2, 3
SIDE_CODE = {"inside": SIDE_INSIDE, "outside": SIDE_OUTSIDE, "ignore": SIDE_IGNORE}
STATUS_CODE = {name: k for k, name in enumerate(ITEM_STATUSES)}
KIND_CODE = {name: k for k, name in enumerate(APPROVAL_KINDS)}
# Snapshot.appr_final: where an item comes to rest under an approval, when not a venue index
FINAL_OUTSIDE, FINAL_NEXT = -1, -2  # the outside of the unit; the venue behind the door
ROUTE_FAR = 2**30  # Snapshot.route_dist of an unreachable node
