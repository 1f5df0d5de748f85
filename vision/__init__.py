"""Camera evidence for Custodian: shred particle size, media labels, people at portals."""
