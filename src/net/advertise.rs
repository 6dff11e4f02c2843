//! What this node tells clients about itself, and where each shard listens.
//!
//! Two modes (`advertise_shards`):
//! - off (default): one broker, node `node_id`, at the advertised address.
//!   Every shard accepts on the listen port (SO_REUSEPORT); a request for a
//!   partition or group owned elsewhere crosses cores (the `hop` stage).
//! - on: every shard is a broker of its own. Shard N listens on the listen
//!   port + N (no SO_REUSEPORT: the port is that shard's alone), is node
//!   `node_id` + N, and is advertised at the advertised port + N. Metadata
//!   names the owning shard as each partition's leader and FindCoordinator
//!   the shard owning the group's (or transactional id's) internal
//!   partition, so clients send each request straight to the shard that
//!   serves it. A request that reaches another shard anyway (a client with
//!   stale metadata, a bootstrap connection) is still served, through the
//!   hop, exactly as in the other mode: the mode changes what is
//!   advertised, never what is accepted.
//!
//! Pure functions of the configuration and the shard count; used on every
//! shard. Invariant: the node ids and ports of a node's brokers are
//! distinct, and shard 0 is the first broker (the bootstrap address and the
//! controller).

use std::net::SocketAddr;

use crate::{config::Config, metadata::TopicMetadata};

/// One broker as clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// The node id clients use for `shard` (the leader of its partitions, the
/// coordinator of its groups).
pub fn node_of_shard(config: &Config, shard: usize) -> i32 {
    if config.advertise_shards {
        config.node_id + shard as i32
    } else {
        config.node_id
    }
}

/// The node id leading `partition` of `topic`: its owning shard's.
pub fn leader_of(config: &Config, topic: &TopicMetadata, partition: i32) -> i32 {
    node_of_shard(config, topic.shard_of(partition).unwrap_or(0))
}

/// Whether `node_id` names a broker of this node (one of its shards).
pub fn is_local_node(config: &Config, shard_count: usize, node_id: i32) -> bool {
    let brokers = if config.advertise_shards { shard_count } else { 1 };
    (0..brokers).any(|shard| node_of_shard(config, shard) == node_id)
}

/// Every broker this node advertises, shard 0 first.
pub fn brokers(config: &Config, shard_count: usize) -> Vec<Broker> {
    let brokers = if config.advertise_shards { shard_count } else { 1 };
    (0..brokers).map(|shard| broker_of_shard(config, shard)).collect()
}

/// The broker `shard` is advertised as.
pub fn broker_of_shard(config: &Config, shard: usize) -> Broker {
    let (host, port) = config.advertised_host_port();
    let offset = if config.advertise_shards { shard as i32 } else { 0 };
    Broker {
        node_id: node_of_shard(config, shard),
        host,
        port: port + offset,
    }
}

/// The address `shard` accepts Kafka connections on, and whether it shares
/// it with the other shards (SO_REUSEPORT).
pub fn listen_address(config: &Config, shard: usize) -> (SocketAddr, bool) {
    if config.advertise_shards {
        let mut address = config.listen;
        address.set_port(config.listen.port() + shard as u16);
        (address, false)
    } else {
        (config.listen, true)
    }
}

/// Checks that every shard's port (listen and advertised) exists, that the
/// admin listener does not sit on one of them, and that node ids do not
/// overflow: the listen port + the last shard must be a port, and so on.
pub fn check(config: &Config, shard_count: usize) -> Result<(), String> {
    if !config.advertise_shards {
        return Ok(());
    }
    let last = shard_count.saturating_sub(1) as i64;
    let (_, advertised_port) = config.advertised_host_port();
    if i64::from(config.listen.port()) + last > i64::from(u16::MAX) {
        return Err(format!(
            "advertise_shards: shard {last} would listen on port {} + {last}, past 65535",
            config.listen.port()
        ));
    }
    if i64::from(advertised_port) + last > i64::from(u16::MAX) {
        return Err(format!(
            "advertise_shards: shard {last} would be advertised on port {advertised_port} + {last}, past 65535"
        ));
    }
    if let Ok(Some(admin)) = config.admin_address() {
        let first = config.listen.port();
        let same_host = admin.ip() == config.listen.ip()
            || admin.ip().is_unspecified()
            || config.listen.ip().is_unspecified();
        if same_host && admin.port() >= first && i64::from(admin.port()) <= i64::from(first) + last {
            return Err(format!(
                "advertise_shards: admin_listen {admin} takes the port of shard {} (shard N listens on the listen port + N)",
                admin.port() - first
            ));
        }
    }
    if i64::from(config.node_id) + last > i64::from(i32::MAX) {
        return Err(format!(
            "advertise_shards: shard {last} would be node {} + {last}, past the largest node id",
            config.node_id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(advertise_shards: bool) -> Config {
        Config {
            listen: "127.0.0.1:9092".parse().unwrap(),
            node_id: 7,
            advertise_shards,
            ..Config::default()
        }
    }

    #[test]
    fn one_broker_for_every_shard_by_default() {
        let config = config(false);
        assert_eq!(
            brokers(&config, 4),
            vec![Broker {
                node_id: 7,
                host: "127.0.0.1".into(),
                port: 9092
            }]
        );
        assert_eq!(node_of_shard(&config, 3), 7);
        assert_eq!(
            listen_address(&config, 3),
            ("127.0.0.1:9092".parse().unwrap(), true)
        );
        assert!(is_local_node(&config, 4, 7));
        assert!(!is_local_node(&config, 4, 8));
    }

    #[test]
    fn a_broker_per_shard_on_consecutive_ports_and_node_ids() {
        let mut config = config(true);
        config.advertised_listener = Some("broker.example:19092".into());
        let all = brokers(&config, 3);
        let ids: Vec<i32> = all.iter().map(|b| b.node_id).collect();
        let ports: Vec<i32> = all.iter().map(|b| b.port).collect();
        assert_eq!(ids, vec![7, 8, 9]);
        assert_eq!(ports, vec![19092, 19093, 19094]);
        assert!(all.iter().all(|b| b.host == "broker.example"));
        assert_eq!(broker_of_shard(&config, 2), all[2]);
        assert_eq!(
            listen_address(&config, 2),
            ("127.0.0.1:9094".parse().unwrap(), false)
        );
        assert!(is_local_node(&config, 3, 9));
        assert!(!is_local_node(&config, 3, 10));
        assert!(!is_local_node(&config, 3, 6));
    }

    #[test]
    fn ports_past_65535_or_taken_by_the_admin_listener_are_refused() {
        let mut config = config(true);
        config.listen = "127.0.0.1:65534".parse().unwrap();
        assert!(check(&config, 2).is_ok());
        assert!(check(&config, 3).unwrap_err().contains("past 65535"));
        config.listen = "127.0.0.1:9092".parse().unwrap();
        config.advertised_listener = Some("h:65535".into());
        assert!(check(&config, 2).unwrap_err().contains("advertised"));
        config.advertised_listener = None;
        config.admin_listen = "127.0.0.1:9093".into();
        assert!(check(&config, 2).unwrap_err().contains("shard 1"));
        assert!(check(&config, 1).is_ok());
        config.admin_listen = "0.0.0.0:9094".into();
        assert!(check(&config, 3).unwrap_err().contains("shard 2"));
        config.admin_listen = String::new();
        assert!(check(&config, 3).is_ok());
        config.node_id = i32::MAX;
        assert!(check(&config, 2).unwrap_err().contains("node id"));
        config.advertise_shards = false;
        assert!(check(&config, 200).is_ok());
    }
}
