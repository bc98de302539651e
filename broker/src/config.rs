//! Broker settings: every flag has an environment variable and a Kafka-style default.
//!
//! This module only parses and checks settings; it never touches the network or disk.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::quorum::Voters;
use crate::security::tls::ClientAuth;

mod listeners;

pub use listeners::{ListenerSpec, Mechanisms, SUPPORTED_MECHANISMS};

/// `samsa-broker`: a Kafka-compatible broker.
///
/// Started with no arguments it is a working single-node broker on localhost:9092 that keeps its
/// data in ./data. Every flag can also be set with the environment variable named beside it.
#[derive(Debug, Clone, Parser)]
#[command(name = "samsa-broker", version, about, long_about = None)]
pub struct BrokerConfig {
    /// Address the Kafka protocol listener binds to.
    #[arg(long, env = "SAMSA_LISTEN", default_value = "0.0.0.0:9092")]
    pub listen: SocketAddr,

    /// host:port that clients are told to connect to (Metadata responses). Defaults to
    /// localhost:<listen port> when listening on all interfaces, else the listen address.
    #[arg(long, env = "SAMSA_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,

    // --- Listeners and TLS (see `listeners`: resolved by `BrokerConfig::listener_specs`). ---
    /// Kafka listeners as NAME://HOST:PORT,... (Kafka's `listeners`), e.g.
    /// `PLAINTEXT://:9092,SSL://:9093`. Names are case-insensitive (kept upper-case) and each
    /// gets its protocol from --listener-security-protocol-map; an empty HOST binds every
    /// interface, `[::]` every IPv6 one. Unset: --listen is the one listener, named PLAINTEXT.
    /// Cannot be combined with --listen.
    #[arg(long, env = "SAMSA_LISTENERS", conflicts_with = "listen")]
    pub listeners: Option<String>,

    /// host:port clients are told to connect to, per listener, as NAME://HOST:PORT,... (Kafka's
    /// `advertised.listeners`). A listener not named here is advertised as localhost:<port>
    /// when it binds every interface, else as its bind address; --advertised-listener sets the
    /// first listener's. Every name must be one of --listeners.
    #[arg(
        long,
        env = "SAMSA_ADVERTISED_LISTENERS",
        conflicts_with = "advertised_listener"
    )]
    pub advertised_listeners: Option<String>,

    /// Security protocol of each listener as NAME:PROTOCOL,... (Kafka's
    /// `listener.security.protocol.map`); PROTOCOL is PLAINTEXT, SSL, SASL_PLAINTEXT or
    /// SASL_SSL. Every listener name needs a mapping.
    #[arg(
        long,
        env = "SAMSA_LISTENER_SECURITY_PROTOCOL_MAP",
        default_value = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    )]
    pub listener_security_protocol_map: String,

    /// PEM certificate chain (leaf first) that SSL and SASL_SSL listeners present
    /// (Kafka's `ssl.keystore.location` with `ssl.keystore.type=PEM`).
    #[arg(long, env = "SAMSA_SSL_CERTIFICATE_LOCATION")]
    pub ssl_certificate_location: Option<PathBuf>,

    /// PEM private key of --ssl-certificate-location: PKCS#8, RSA (PKCS#1) or SEC1 EC.
    #[arg(long, env = "SAMSA_SSL_KEY_LOCATION")]
    pub ssl_key_location: Option<PathBuf>,

    /// PEM CA bundle that client certificates are verified against (Kafka's
    /// `ssl.truststore.location`); needed when client certificates are requested or required.
    #[arg(long, env = "SAMSA_SSL_TRUSTSTORE_LOCATION")]
    pub ssl_truststore_location: Option<PathBuf>,

    /// Client certificates on TLS listeners (Kafka's `ssl.client.auth`): `none`, `requested`
    /// (asked for, not needed) or `required`. A verified certificate makes the connection's
    /// principal `User:<subject DN, RFC 2253>` on SSL listeners.
    #[arg(long, env = "SAMSA_SSL_CLIENT_AUTH", default_value = "none",
          value_parser = parse_client_auth)]
    pub ssl_client_auth: ClientAuth,

    /// Per-listener --ssl-client-auth as NAME:VALUE,... (Kafka's
    /// `listener.name.<name>.ssl.client.auth`), e.g. `INTERNAL:required,EXTERNAL:none`.
    #[arg(long, env = "SAMSA_LISTENER_SSL_CLIENT_AUTH")]
    pub listener_ssl_client_auth: Option<String>,

    /// Per-listener --ssl-truststore-location as NAME:PATH,... (Kafka's
    /// `listener.name.<name>.ssl.truststore.location`).
    #[arg(long, env = "SAMSA_LISTENER_SSL_TRUSTSTORE_LOCATION")]
    pub listener_ssl_truststore_location: Option<String>,

    /// How often the TLS files are checked for changes, in milliseconds; changed files (a
    /// renewed certificate) apply to new connections. A file that cannot be used is logged
    /// and the loaded certificate stays.
    #[arg(long, env = "SAMSA_SSL_RELOAD_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ssl_reload_interval_ms: u64,

    /// SASL mechanisms offered on SASL_PLAINTEXT and SASL_SSL listeners, comma-separated
    /// (Kafka's `sasl.enabled.mechanisms`): SCRAM-SHA-256, SCRAM-SHA-512, PLAIN.
    #[arg(long, env = "SAMSA_SASL_ENABLED_MECHANISMS",
          default_value = "SCRAM-SHA-256,SCRAM-SHA-512", value_parser = listeners::parse_mechanisms)]
    pub sasl_enabled_mechanisms: Mechanisms,
    // --- End of listeners and TLS. ---
    /// Directory holding partition logs and broker metadata. Created if missing.
    #[arg(long, env = "SAMSA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// This broker's node id (Kafka's node.id).
    #[arg(long, env = "SAMSA_NODE_ID", default_value_t = 1)]
    pub node_id: i32,

    /// Added to --node-id once at start (see [`BrokerConfig::resolve_node_id`]): a second set
    /// of pods (a blue-green upgrade's new StatefulSet) takes its pod ordinal as --node-id and
    /// gets ids of its own, e.g. 1000 + ordinal.
    #[arg(long, env = "SAMSA_NODE_ID_OFFSET", default_value_t = 0)]
    pub node_id_offset: i32,

    /// When --process-roles is unset: a process whose --node-id before --node-id-offset (its pod
    /// ordinal) is below this runs a controller too, joining the quorum as a non-voter until
    /// AddRaftVoter makes it a voter. Unset: a process runs a controller when its id is one of
    /// --controller-quorum-voters.
    #[arg(long, env = "SAMSA_CONTROLLER_ORDINALS")]
    pub controller_ordinals: Option<i32>,

    /// --node-id as given, before --node-id-offset was added.
    #[arg(skip)]
    pub ordinal: Option<i32>,

    /// Address of the HTTP endpoint serving /metrics (Prometheus text), /healthz and /readyz.
    #[arg(long, env = "SAMSA_METRICS_LISTEN", default_value = "0.0.0.0:9404")]
    pub metrics_listen: SocketAddr,

    /// Partitions of a topic created without an explicit count (num.partitions).
    #[arg(long, env = "SAMSA_NUM_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub num_partitions: i32,

    /// Replication factor of topics created without one (default.replication.factor).
    #[arg(long, env = "SAMSA_DEFAULT_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(i16).range(1..))]
    pub default_replication_factor: i16,

    /// Create a topic when a client asks for metadata of an unknown topic
    /// (auto.create.topics.enable).
    #[arg(long, env = "SAMSA_AUTO_CREATE_TOPICS_ENABLE", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub auto_create_topics_enable: bool,

    /// Enforce ACLs on every request (Kafka's authorizer.class.name set to the standard
    /// authorizer). Off: every principal may do everything and the ACL APIs answer
    /// SECURITY_DISABLED, as Kafka does without an authorizer.
    #[arg(long, env = "SAMSA_AUTHORIZER_ENABLE", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub authorizer_enable: bool,

    /// Principals allowed everything whatever the ACLs say, separated by `;`
    /// (super.users), e.g. `User:admin;User:CN=samsa-operator`.
    #[arg(long, env = "SAMSA_SUPER_USERS", default_value = "")]
    pub super_users: String,

    /// With the authorizer on: allow an operation on a resource that no ACL names
    /// (allow.everyone.if.no.acl.found; Kafka's default is false).
    #[arg(long, env = "SAMSA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub allow_everyone_if_no_acl_found: bool,

    /// Delete log segments older than this many milliseconds; -1 keeps them forever
    /// (log.retention.ms; Kafka's default is 7 days).
    #[arg(
        long,
        env = "SAMSA_LOG_RETENTION_MS",
        default_value_t = 604_800_000,
        allow_negative_numbers = true
    )]
    pub log_retention_ms: i64,

    /// Delete the oldest segments while a partition is larger than this many bytes; -1 means no
    /// size limit (log.retention.bytes).
    #[arg(long, env = "SAMSA_LOG_RETENTION_BYTES", default_value_t = -1,
          allow_negative_numbers = true)]
    pub log_retention_bytes: i64,

    /// How often the retention task runs, in milliseconds (log.retention.check.interval.ms).
    #[arg(long, env = "SAMSA_LOG_RETENTION_CHECK_INTERVAL_MS", default_value_t = 300_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub log_retention_check_interval_ms: u64,

    /// Maximum size of one log segment file in bytes (log.segment.bytes).
    #[arg(long, env = "SAMSA_LOG_SEGMENT_BYTES", default_value_t = 1_073_741_824,
          value_parser = clap::value_parser!(i64).range(14..=i32::MAX as i64))]
    pub log_segment_bytes: i64,

    /// Roll a new segment after this many milliseconds even if it is not full (log.roll.ms).
    #[arg(long, env = "SAMSA_LOG_ROLL_MS", default_value_t = 604_800_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub log_roll_ms: i64,

    /// Largest record batch the broker accepts, in bytes (message.max.bytes).
    #[arg(long, env = "SAMSA_MESSAGE_MAX_BYTES", default_value_t = 1_048_588,
          value_parser = clap::value_parser!(i32).range(0..))]
    pub message_max_bytes: i32,

    /// fsync a partition after this many messages (log.flush.interval.messages). The default
    /// never forces a flush and leaves durability to the page cache, like Kafka: see README.
    #[arg(long, env = "SAMSA_LOG_FLUSH_INTERVAL_MESSAGES", default_value_t = i64::MAX,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub log_flush_interval_messages: i64,

    /// fsync a partition when its last flush is older than this many milliseconds
    /// (log.flush.interval.ms). Unset: never forced by time.
    #[arg(long, env = "SAMSA_LOG_FLUSH_INTERVAL_MS",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub log_flush_interval_ms: Option<i64>,

    /// Bytes between two entries of the sparse offset index (log.index.interval.bytes).
    #[arg(long, env = "SAMSA_LOG_INDEX_INTERVAL_BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(i32).range(0..))]
    pub log_index_interval_bytes: i32,

    /// Largest request frame accepted, in bytes; a bigger frame closes its connection
    /// (socket.request.max.bytes).
    #[arg(long, env = "SAMSA_SOCKET_REQUEST_MAX_BYTES", default_value_t = 104_857_600,
          value_parser = clap::value_parser!(i32).range(64..))]
    pub socket_request_max_bytes: i32,

    /// Default minimum number of in-sync replicas for acks=all (min.insync.replicas).
    #[arg(long, env = "SAMSA_MIN_INSYNC_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub min_insync_replicas: i32,

    /// Partitions of the internal __consumer_offsets topic, fixed when it is first created
    /// (offsets.topic.num.partitions).
    #[arg(long, env = "SAMSA_OFFSETS_TOPIC_NUM_PARTITIONS", default_value_t = 50,
          value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub offsets_topic_num_partitions: i32,

    /// How long the first rebalance of an empty group waits for more members to join
    /// (group.initial.rebalance.delay.ms).
    #[arg(long, env = "SAMSA_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub group_initial_rebalance_delay_ms: i64,

    /// Smallest session timeout a group member may ask for (group.min.session.timeout.ms).
    #[arg(long, env = "SAMSA_GROUP_MIN_SESSION_TIMEOUT_MS", default_value_t = 6000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_min_session_timeout_ms: i32,

    /// Largest session timeout a group member may ask for (group.max.session.timeout.ms).
    #[arg(long, env = "SAMSA_GROUP_MAX_SESSION_TIMEOUT_MS", default_value_t = 1_800_000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_max_session_timeout_ms: i32,

    /// Default cleanup policy of topics: delete, compact, or compact,delete (log.cleanup.policy).
    #[arg(long, env = "SAMSA_LOG_CLEANUP_POLICY", default_value = "delete",
          value_parser = parse_cleanup_policy)]
    pub log_cleanup_policy: String,

    /// Run the log cleaner, which compacts topics with cleanup.policy=compact
    /// (log.cleaner.enable).
    #[arg(long, env = "SAMSA_LOG_CLEANER_ENABLE", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub log_cleaner_enable: bool,

    /// How long the log cleaner sleeps between checks for logs to clean, in milliseconds
    /// (log.cleaner.backoff.ms).
    #[arg(long, env = "SAMSA_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub log_cleaner_backoff_ms: u64,

    /// Default min.cleanable.dirty.ratio: a compacted log is cleaned once its dirty bytes reach
    /// this share of its cleanable bytes (log.cleaner.min.cleanable.ratio).
    #[arg(long, env = "SAMSA_LOG_CLEANER_MIN_CLEANABLE_RATIO", default_value_t = 0.5,
          value_parser = parse_ratio)]
    pub log_cleaner_min_cleanable_ratio: f64,

    /// Default delete.retention.ms: how long tombstones stay in compacted logs
    /// (log.cleaner.delete.retention.ms; 1 day).
    #[arg(long, env = "SAMSA_LOG_CLEANER_DELETE_RETENTION_MS", default_value_t = 86_400_000,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub log_cleaner_delete_retention_ms: i64,

    /// Default min.compaction.lag.ms: records younger than this are not compacted
    /// (log.cleaner.min.compaction.lag.ms).
    #[arg(long, env = "SAMSA_LOG_CLEANER_MIN_COMPACTION_LAG_MS", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub log_cleaner_min_compaction_lag_ms: i64,

    /// Roles of this process, comma-separated: `broker`, `controller` or both
    /// (process.roles). A controller holds a vote in the metadata quorum; a controller-only
    /// process serves no Kafka clients. A single node (no --controller-quorum-voters) is
    /// always both. Unset in a cluster: `broker,controller` when --node-id is one of the
    /// voters, else `broker` (so that every member of a cluster can share one setting). A
    /// controller whose id is not among --controller-quorum-voters starts as a non-voter and
    /// waits to be added (AddRaftVoter, KIP-853); once it has joined, its Raft log keeps it a
    /// voter across restarts.
    #[arg(long, env = "SAMSA_PROCESS_ROLES", value_parser = parse_roles)]
    pub process_roles: Option<ProcessRoles>,

    /// The controller quorum as ID@HOST:PORT,... (controller.quorum.voters), e.g.
    /// `1@c1:9093,2@c2:9093,3@c3:9093`. Set: this process is a cluster member (the quorum
    /// holds the metadata, partitions are replicated). Unset: a single broker whose metadata is
    /// local. These voters bootstrap a new quorum (the lowest id initializes it) and are the
    /// controllers contacted first; once the quorum exists, its membership names the voters,
    /// which AddRaftVoter and RemoveRaftVoter change.
    #[arg(long, env = "SAMSA_CONTROLLER_QUORUM_VOTERS")]
    pub controller_quorum_voters: Option<Voters>,

    /// Address the controller gRPC listener binds to: Raft traffic between controllers and
    /// broker registration, heartbeats and metadata (controller listener of `listeners`).
    #[arg(long, env = "SAMSA_CONTROLLER_LISTEN", default_value = "0.0.0.0:9093")]
    pub controller_listen: SocketAddr,

    /// host:port other controllers reach this controller at (the CONTROLLER listener of
    /// Kafka's advertised.listeners). Defaults to this node's entry in
    /// --controller-quorum-voters, else the advertised host with the controller port. A
    /// controller outside the bootstrap voters announces it when it joins the quorum.
    #[arg(long, env = "SAMSA_ADVERTISED_CONTROLLER_LISTENER")]
    pub advertised_controller_listener: Option<String>,

    /// How often a broker heartbeats to the controller leader, in milliseconds
    /// (broker.heartbeat.interval.ms).
    #[arg(long, env = "SAMSA_BROKER_HEARTBEAT_INTERVAL_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub broker_heartbeat_interval_ms: u64,

    /// Move leadership back to preferred replicas (the first of each assignment) when a
    /// broker leads too few of its own (auto.leader.rebalance.enable); cluster mode.
    #[arg(long, env = "SAMSA_AUTO_LEADER_REBALANCE_ENABLE", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub auto_leader_rebalance_enable: bool,

    /// How often the controller leader checks the leader balance, in seconds
    /// (leader.imbalance.check.interval.seconds).
    #[arg(long, env = "SAMSA_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub leader_imbalance_check_interval_seconds: u64,

    /// The share (percent) of its preferred partitions a broker may not lead before they are
    /// handed back to it (leader.imbalance.per.broker.percentage).
    #[arg(long, env = "SAMSA_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub leader_imbalance_per_broker_percentage: u32,

    /// A broker not heard from for this many milliseconds is fenced: it leaves ISRs and its
    /// leaderships move (broker.session.timeout.ms).
    #[arg(long, env = "SAMSA_BROKER_SESSION_TIMEOUT_MS", default_value_t = 9000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub broker_session_timeout_ms: u64,

    /// Address the replication gRPC listener binds to: followers fetch partition data from
    /// leaders here. Only used in a cluster (--controller-quorum-voters set); advertised to the
    /// other brokers as <advertised host>:<bound port>.
    #[arg(long, env = "SAMSA_REPLICATION_LISTEN", default_value = "0.0.0.0:9094")]
    pub replication_listen: SocketAddr,

    /// PEM file with this node's certificate chain for the internal gRPC ports (controller and
    /// replication), leaf first. Set together with --internal-tls-key-location and
    /// --internal-tls-ca-location: both internal listeners then serve TLS and require a client
    /// certificate signed by the cluster CA, and every internal client presents this certificate.
    /// The certificate must cover (DNS or IP SAN) every host other nodes dial this node at, and
    /// serve as both server and client certificate (extended key usage serverAuth and
    /// clientAuth, or none). Unset: the internal ports are plaintext and unauthenticated.
    #[arg(long, env = "SAMSA_INTERNAL_TLS_CERTIFICATE_LOCATION",
          requires_all = ["internal_tls_key_location", "internal_tls_ca_location"])]
    pub internal_tls_certificate_location: Option<PathBuf>,

    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of
    /// --internal-tls-certificate-location.
    #[arg(long, env = "SAMSA_INTERNAL_TLS_KEY_LOCATION",
          requires_all = ["internal_tls_certificate_location", "internal_tls_ca_location"])]
    pub internal_tls_key_location: Option<PathBuf>,

    /// PEM file with the cluster CA certificate(s): internal servers accept only client
    /// certificates it signed, internal clients only server certificates it signed.
    #[arg(long, env = "SAMSA_INTERNAL_TLS_CA_LOCATION",
          requires_all = ["internal_tls_certificate_location", "internal_tls_key_location"])]
    pub internal_tls_ca_location: Option<PathBuf>,

    /// How often the three --internal-tls-*-location files are read again, in milliseconds:
    /// when they changed (a renewed certificate), new internal connections use the new ones.
    /// A set that does not load (e.g. a key not yet matching its certificate) is logged and the
    /// previous one stays in use.
    #[arg(long, env = "SAMSA_INTERNAL_TLS_RELOAD_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub internal_tls_reload_interval_ms: u64,

    /// Rack of this broker (broker.rack): replicas of a partition are spread over racks.
    #[arg(long, env = "SAMSA_BROKER_RACK", conflicts_with = "broker_rack_file")]
    pub broker_rack: Option<String>,

    /// File holding this broker's rack, read once at start-up instead of --broker-rack. The
    /// broker waits for the file to exist and hold a value (surrounding whitespace ignored), up to
    /// --broker-rack-file-timeout-ms. On Kubernetes this is a downward-API file of a pod
    /// annotation that the operator sets from the node's topology label once the pod is scheduled.
    #[arg(long, env = "SAMSA_BROKER_RACK_FILE")]
    pub broker_rack_file: Option<PathBuf>,

    /// How long to wait for --broker-rack-file to hold a rack before start-up fails, in
    /// milliseconds.
    #[arg(long, env = "SAMSA_BROKER_RACK_FILE_TIMEOUT_MS", default_value_t = 300_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub broker_rack_file_timeout_ms: u64,

    /// A follower that has not caught up with the leader's log end for this many milliseconds
    /// leaves the ISR (replica.lag.time.max.ms).
    #[arg(long, env = "SAMSA_REPLICA_LAG_TIME_MAX_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub replica_lag_time_max_ms: u64,

    /// Longest time a follower's fetch waits at the leader for new data, in milliseconds
    /// (replica.fetch.wait.max.ms).
    #[arg(long, env = "SAMSA_REPLICA_FETCH_WAIT_MAX_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(0..=30_000))]
    pub replica_fetch_wait_max_ms: u64,

    /// Bytes a follower asks for per partition and fetch (replica.fetch.max.bytes).
    #[arg(long, env = "SAMSA_REPLICA_FETCH_MAX_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(i32).range(1024..))]
    pub replica_fetch_max_bytes: i32,

    /// Replication factor of __consumer_offsets, capped at the number of live brokers when it
    /// is first created (offsets.topic.replication.factor).
    #[arg(long, env = "SAMSA_OFFSETS_TOPIC_REPLICATION_FACTOR", default_value_t = 3,
          value_parser = clap::value_parser!(i16).range(1..))]
    pub offsets_topic_replication_factor: i16,

    /// How long a producer's idempotence state is kept after its newest batch, in milliseconds
    /// (producer.id.expiration.ms). A producer silent for longer starts afresh.
    #[arg(long, env = "SAMSA_PRODUCER_ID_EXPIRATION_MS", default_value_t = 86_400_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub producer_id_expiration_ms: i64,

    /// How often expired producer state is removed, in milliseconds
    /// (producer.id.expiration.check.interval.ms).
    #[arg(long, env = "SAMSA_PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS", default_value_t = 600_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub producer_id_expiration_check_interval_ms: u64,

    /// On SIGTERM in a cluster, how long the broker may spend moving its partition leaderships
    /// (and the controller quorum's leadership) to other brokers before it stops serving, in
    /// milliseconds (controlled.shutdown; Kafka retries for about as long). Keep it under the
    /// pod's termination grace period.
    #[arg(long, env = "SAMSA_CONTROLLED_SHUTDOWN_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(0..))]
    pub controlled_shutdown_timeout_ms: u64,

    /// Threads of the async runtime that serves connections, appends and fetches (0: one per
    /// core the process may run on). More threads than cores let other connections go on while
    /// one thread waits in the kernel, e.g. on a write throttled by page-cache writeback.
    #[arg(long, env = "SAMSA_WORKER_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub worker_threads: u16,

    /// Log filter in tracing's EnvFilter syntax (e.g. "info", "samsa_broker=debug").
    #[arg(long, env = "SAMSA_LOG", default_value = "info")]
    pub log: String,
}

/// Roles of a process (process.roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves Kafka clients.
    pub broker: bool,
    /// Votes in the metadata quorum.
    pub controller: bool,
}

fn parse_roles(v: &str) -> Result<ProcessRoles, String> {
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => {
                return Err(format!(
                    "unknown role {role:?}: expected broker and/or controller"
                ))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err("no role: expected broker, controller or broker,controller".to_string());
    }
    Ok(roles)
}

fn parse_client_auth(v: &str) -> Result<ClientAuth, String> {
    v.parse()
}

fn parse_cleanup_policy(v: &str) -> Result<String, String> {
    crate::topics::config::check_cleanup_policy(v).map(|()| v.trim().to_string())
}

fn parse_ratio(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{v:?} is not a number between 0 and 1")),
    }
}

impl BrokerConfig {
    /// The authorizer's settings, or `None` when --authorizer-enable is off.
    pub fn authorizer(&self) -> Result<Option<crate::security::acl::AuthorizerConfig>, String> {
        let super_users = self
            .super_users
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| format!("--super-users: {e}")))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(self
            .authorizer_enable
            .then_some(crate::security::acl::AuthorizerConfig {
                super_users,
                allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
            }))
    }

    /// The host and port written into Metadata responses for the first listener (the only one
    /// unless --listeners names more).
    pub fn advertised(&self) -> Result<(String, i32), String> {
        let specs = self.listener_specs()?;
        let first = specs
            .first()
            .ok_or_else(|| "--listeners: no listener given".to_string())?;
        Ok((
            first.advertised_host.clone(),
            i32::from(first.advertised_port),
        ))
    }

    /// Adds --node-id-offset to --node-id (once: the offset is 0 afterwards) and remembers
    /// the ordinal. Fails when the sum leaves the range of broker ids.
    pub fn resolve_node_id(mut self) -> Result<BrokerConfig, String> {
        if self.ordinal.is_some() {
            return Ok(self);
        }
        let id = self
            .node_id
            .checked_add(self.node_id_offset)
            .filter(|id| *id >= 0)
            .ok_or_else(|| {
                format!(
                    "--node-id {} plus --node-id-offset {} is not a valid broker id",
                    self.node_id, self.node_id_offset
                )
            })?;
        self.ordinal = Some(self.node_id);
        self.node_id = id;
        self.node_id_offset = 0;
        Ok(self)
    }

    /// The roles this process runs: --process-roles, or the default for its place (see there).
    pub fn roles(&self) -> ProcessRoles {
        if let Some(roles) = self.process_roles {
            return roles;
        }
        if let (Some(n), Some(_)) = (self.controller_ordinals, &self.controller_quorum_voters) {
            return ProcessRoles {
                broker: true,
                controller: self.ordinal.unwrap_or(self.node_id) < n,
            };
        }
        let voter = match &self.controller_quorum_voters {
            Some(v) => u64::try_from(self.node_id).is_ok_and(|id| v.contains(id)),
            None => true,
        };
        ProcessRoles {
            broker: true,
            controller: voter,
        }
    }

    /// The bootstrap voters: --controller-quorum-voters, or this node alone at its controller
    /// listener (localhost when it listens on every interface).
    pub fn voters(&self) -> Voters {
        if let Some(v) = &self.controller_quorum_voters {
            return v.clone();
        }
        let addr = if self.controller_listen.ip().is_unspecified() {
            format!("localhost:{}", self.controller_listen.port())
        } else {
            self.controller_listen.to_string()
        };
        let id = u64::try_from(self.node_id).unwrap_or_default();
        Voters(std::collections::BTreeMap::from([(id, addr)]))
    }

    /// The controller address this node gives the quorum: --advertised-controller-listener,
    /// else its entry among the bootstrap voters, else the advertised host with the controller
    /// port (`port`: the bound one, for an ephemeral --controller-listen).
    pub fn advertised_controller(&self, port: u16) -> String {
        if let Some(a) = &self.advertised_controller_listener {
            return a.clone();
        }
        let voters = self.voters();
        if let Some(a) = u64::try_from(self.node_id)
            .ok()
            .and_then(|id| voters.address(id))
        {
            return a.to_string();
        }
        if !self.controller_listen.ip().is_unspecified() {
            return std::net::SocketAddr::new(self.controller_listen.ip(), port).to_string();
        }
        let host = self
            .advertised()
            .map(|(h, _)| h)
            .unwrap_or_else(|_| "localhost".to_string());
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// The files of internal TLS (--internal-tls-*-location): all three, or none (plaintext).
    /// Fails naming the flag that is missing when only some are set.
    pub fn internal_tls_files(
        &self,
    ) -> Result<Option<crate::security::internal_tls::InternalTlsFiles>, String> {
        let flags = [
            (
                "--internal-tls-certificate-location",
                &self.internal_tls_certificate_location,
            ),
            (
                "--internal-tls-key-location",
                &self.internal_tls_key_location,
            ),
            ("--internal-tls-ca-location", &self.internal_tls_ca_location),
        ];
        let missing: Vec<&str> = flags
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| *name)
            .collect();
        match (
            &self.internal_tls_certificate_location,
            &self.internal_tls_key_location,
            &self.internal_tls_ca_location,
        ) {
            (Some(certificate), Some(key), Some(ca)) => {
                Ok(Some(crate::security::internal_tls::InternalTlsFiles {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    ca: ca.clone(),
                }))
            }
            (None, None, None) => Ok(None),
            _ => Err(format!(
                "internal TLS needs all three of --internal-tls-certificate-location, \
                 --internal-tls-key-location and --internal-tls-ca-location; missing: {}",
                missing.join(", ")
            )),
        }
    }

    /// A configuration with every default, for tests.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut cfg = BrokerConfig::parse_from(["samsa-broker"]);
        cfg.data_dir = data_dir;
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = BrokerConfig::parse_from(["samsa-broker"]);
        assert_eq!(c.listen.to_string(), "0.0.0.0:9092");
        assert_eq!(c.advertised().unwrap(), ("localhost".to_string(), 9092));
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics_enable);
        assert_eq!(c.log_retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(c.log_segment_bytes, 1 << 30);
        assert_eq!(c.message_max_bytes, 1_048_588);
    }

    #[test]
    fn advertised_listener_is_checked() {
        let c = BrokerConfig::parse_from(["samsa-broker", "--advertised-listener", "b1:19092"]);
        assert_eq!(c.advertised().unwrap(), ("b1".to_string(), 19092));
        let c = BrokerConfig::parse_from(["samsa-broker", "--advertised-listener", "nope"]);
        assert!(c.advertised().unwrap_err().contains("HOST:PORT"));
        let c = BrokerConfig::parse_from(["samsa-broker", "--auto-create-topics-enable", "false"]);
        assert!(!c.auto_create_topics_enable);
        assert!(BrokerConfig::try_parse_from(["samsa-broker", "--num-partitions", "0"]).is_err());
    }

    #[test]
    fn authorizer_flags() {
        let c = BrokerConfig::parse_from(["samsa-broker"]);
        assert_eq!(c.authorizer().unwrap(), None);
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--authorizer-enable",
            "true",
            "--super-users",
            "User:admin; User:CN=samsa-operator,O=x",
        ]);
        let a = c.authorizer().unwrap().unwrap();
        assert_eq!(
            a.super_users
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["User:admin", "User:CN=samsa-operator,O=x"]
        );
        assert!(!a.allow_everyone_if_no_acl_found);
        let c = BrokerConfig::parse_from(["samsa-broker", "--super-users", "admin"]);
        assert!(c.authorizer().unwrap_err().contains("--super-users"));
    }

    #[test]
    fn quorum_flags_parse_and_check() {
        let c = BrokerConfig::parse_from(["samsa-broker"]);
        assert!(c.roles().broker && c.roles().controller);
        assert_eq!(c.controller_listen.to_string(), "0.0.0.0:9093");
        assert_eq!(c.voters().to_string(), "1@localhost:9093");
        assert_eq!(c.broker_heartbeat_interval_ms, 2000);
        assert_eq!(c.broker_session_timeout_ms, 9000);
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--process-roles",
            "controller",
            "--controller-quorum-voters",
            "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095",
        ]);
        assert!(!c.roles().broker && c.roles().controller);
        assert_eq!(c.voters().address(3), Some("127.0.0.1:9095"));
        // Unset in a cluster: a voter is both, any other node a broker only.
        let voters = "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095";
        for (id, controller) in [("2", true), ("4", false)] {
            let c = BrokerConfig::parse_from([
                "samsa-broker",
                "--node-id",
                id,
                "--controller-quorum-voters",
                voters,
            ]);
            assert_eq!(
                c.roles(),
                ProcessRoles {
                    broker: true,
                    controller
                },
                "node {id}"
            );
        }
        // A controller outside the bootstrap voters (a voter to be added) is asked for.
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--node-id",
            "4",
            "--process-roles",
            "broker,controller",
            "--controller-quorum-voters",
            voters,
        ]);
        assert!(c.roles().broker && c.roles().controller);
        for bad in [
            ["--process-roles", "gateway"],
            ["--process-roles", ""],
            ["--controller-quorum-voters", "1@nohostport"],
            ["--broker-session-timeout-ms", "0"],
        ] {
            assert!(BrokerConfig::try_parse_from(["samsa-broker", bad[0], bad[1]]).is_err());
        }
    }

    #[test]
    fn internal_tls_flags_come_all_three_or_none() {
        let c = BrokerConfig::parse_from(["samsa-broker"]);
        assert_eq!(c.internal_tls_files(), Ok(None));
        assert_eq!(c.internal_tls_reload_interval_ms, 10_000);
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--internal-tls-certificate-location",
            "/tls/node.pem",
            "--internal-tls-key-location",
            "/tls/node.key",
            "--internal-tls-ca-location",
            "/tls/ca.pem",
        ]);
        let files = c.internal_tls_files().unwrap().unwrap();
        assert_eq!(files.certificate, PathBuf::from("/tls/node.pem"));
        assert_eq!(files.key, PathBuf::from("/tls/node.key"));
        assert_eq!(files.ca, PathBuf::from("/tls/ca.pem"));
        // clap names the missing flag ...
        let e = BrokerConfig::try_parse_from([
            "samsa-broker",
            "--internal-tls-certificate-location",
            "/tls/node.pem",
            "--internal-tls-ca-location",
            "/tls/ca.pem",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--internal-tls-key-location"), "{e}");
        // ... and so does the check of a configuration made without clap.
        let mut c = BrokerConfig::parse_from(["samsa-broker"]);
        c.internal_tls_key_location = Some("/tls/node.key".into());
        let e = c.internal_tls_files().unwrap_err();
        assert!(
            e.contains("missing: --internal-tls-certificate-location, --internal-tls-ca-location"),
            "{e}"
        );
    }

    #[test]
    fn cleaner_flags_parse_and_check() {
        let c = BrokerConfig::parse_from(["samsa-broker"]);
        assert!(c.log_cleaner_enable);
        assert_eq!(c.log_cleaner_backoff_ms, 15_000);
        assert_eq!(c.log_cleaner_min_cleanable_ratio, 0.5);
        assert_eq!(c.log_cleaner_delete_retention_ms, 86_400_000);
        assert_eq!(c.log_cleaner_min_compaction_lag_ms, 0);
        assert_eq!(c.log_cleanup_policy, "delete");
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--log-cleaner-enable",
            "false",
            "--log-cleaner-min-cleanable-ratio",
            "0.01",
            "--log-cleanup-policy",
            "compact,delete",
        ]);
        assert!(!c.log_cleaner_enable);
        assert_eq!(c.log_cleaner_min_cleanable_ratio, 0.01);
        assert_eq!(c.log_cleanup_policy, "compact,delete");
        for bad in [
            ["--log-cleaner-min-cleanable-ratio", "2"],
            ["--log-cleanup-policy", "shred"],
            ["--log-cleaner-backoff-ms", "0"],
        ] {
            assert!(BrokerConfig::try_parse_from(["samsa-broker", bad[0], bad[1]]).is_err());
        }
    }

    #[test]
    fn the_offset_is_added_once_and_ordinals_choose_controllers() {
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--node-id",
            "2",
            "--node-id-offset",
            "1000",
            "--controller-ordinals",
            "3",
            "--controller-quorum-voters",
            "0@a:9093",
        ])
        .resolve_node_id()
        .unwrap();
        assert_eq!((c.node_id, c.ordinal), (1002, Some(2)));
        assert!(c.roles().controller, "ordinal 2 < 3");
        let again = c.clone().resolve_node_id().unwrap();
        assert_eq!(again.node_id, 1002, "applied once");
        let c = BrokerConfig::parse_from([
            "samsa-broker",
            "--node-id",
            "3",
            "--node-id-offset",
            "1000",
            "--controller-ordinals",
            "3",
            "--controller-quorum-voters",
            "0@a:9093",
        ])
        .resolve_node_id()
        .unwrap();
        assert!(!c.roles().controller, "ordinal 3 is not below 3");
        let e =
            BrokerConfig::parse_from(["samsa-broker", "--node-id", "5", "--node-id-offset=-10"])
                .resolve_node_id()
                .unwrap_err();
        assert!(e.contains("--node-id-offset -10"), "{e}");
    }
}
