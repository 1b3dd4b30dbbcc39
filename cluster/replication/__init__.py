"""In-cluster replication, data plane: Kafka's ISR protocol as pure state machines.

What is replicated, and how
---------------------------
Every partition of a topic with replication factor N lives on N brokers. One is the
leader (chosen by the controller from the ISR, cluster/metadata/); the others are
followers that copy the leader's log with ordinary Fetch requests, exactly as Kafka's
ReplicaFetcherThread does, so the bytes on every replica are the leader's bytes:
- A follower fetches with ReplicaState{ReplicaId, ReplicaEpoch} (v15+, ReplicaId in the
  request body before), CurrentLeaderEpoch, FetchOffset = its log end and LastFetchedEpoch
  = the epoch of its last batch (`follower.py`). It appends the returned batches as they
  are — base offsets and leader epochs kept, never a record decoded — and learns the high
  watermark from the response.
- The leader reads beyond the high watermark for a follower, fences stale or future
  leader epochs (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), and checks LastFetchedEpoch
  against its leader-epoch history: a follower whose tail diverged gets DivergingEpoch
  {epoch, end offset} instead of records (KIP-320, replacing KIP-101/279's separate
  OffsetsForLeaderEpoch round trip), truncates there and fetches again
  (`leader_fetch.py`). Each follower fetch advances the leader's view of that follower
  (`leader.py`): high watermark, ISR shrink after replica.lag.time.max.ms, ISR expansion
  once caught up, acks=all completion.
- ISR changes are proposals (`state.IsrProposal`) the leader sends to the controller,
  which applies them with compare-and-set on the partition epoch (KRaft AlterPartition).
  The data plane and the control plane meet only through the plain values of `state.py`
  (leader id, leader epoch, ISR, replicas, partition epoch): no clock is trusted for
  correctness, every decision is fenced by an epoch.
Consumers read from the leader, capped at the high watermark; a partition with a single
replica (no replication state) keeps high watermark = log end, as before.

Coordinator state (groups, transactions): proposed to live in replicated internal partitions
-------------------------------------------------------------------------------------------
Today each coordinator keeps a journal on its broker's disk (cluster/groups/store.py,
cluster/txn/), which dies with the broker. The proposal: put that state where Kafka does,
in `__consumer_offsets` and `__transaction_state` as internal partitions with replication
factor min(3, brokers), replicated by this same data plane (the journal's records
become record batches of those partitions: cluster/groups/records.py already has
Kafka's key/value shapes). The coordinator of a group or transactional id is the leader
of its partition and moves with that leadership: a new leader replays the partition up to
its high watermark before it answers (COORDINATOR_LOAD_IN_PROGRESS until then). Why not the
metadata store:
- write volume: every OffsetCommit is a write; offsets commit many times a second per
  group, while the metadata store (a SQLite file or etcd) is sized for rare, small
  controller writes — every etcd write is a Raft round and an fsync, its whole data set is
  held in memory, and a SQLite writer lock shared by all brokers would serialise every
  commit in the cluster;
- one durability rule: acks=all to the ISR, the same guarantee and the same code as user
  data, tested by the same chaos harness; a second path would need its own failover story;
- ordering and bounds for free: a coordinator's writes are ordered by its partition's
  offsets and fenced by its leader epoch (a deposed coordinator's acks=all write fails),
  and log compaction already bounds the partitions' size.
The metadata store keeps only what the controller needs to place coordinators: which
broker leads which internal partition, like any other partition.
"""
