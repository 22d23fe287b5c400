//! Calico's route-reflector client rule (bird.cfg.template, Global_/Node_ peers; never mesh peers).

/// `rr client; rr cluster id <local CID>;` is rendered iff the peer is iBGP (peer AS == local AS), this node
/// has a cluster ID, and the peer's cluster ID differs from it. Peers built from `peerIP` carry no cluster
/// ID, so they are always clients of an RR; two RRs sharing an ID peer as non-clients.
pub fn rr_client_cluster_id<'a>(
    peer_as: u32,
    local_as: u32,
    local_cluster_id: Option<&'a str>,
    peer_cluster_id: &str,
) -> Option<&'a str> {
    match local_cluster_id {
        Some(cid) if !cid.is_empty() && peer_as == local_as && peer_cluster_id != cid => Some(cid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::rr_client_cluster_id as rr;

    #[test]
    fn the_table_of_the_spec() {
        assert_eq!(rr(64512, 64512, None, ""), None, "no local CID: plain iBGP");
        assert_eq!(rr(64512, 64512, Some("244.0.0.1"), ""), Some("244.0.0.1"), "client");
        assert_eq!(rr(64512, 64512, Some("244.0.0.1"), "244.0.0.1"), None, "same-cluster RRs");
        assert_eq!(
            rr(64512, 64512, Some("244.0.0.1"), "244.0.0.2"),
            Some("244.0.0.1"),
            "distinct RRs are mutual clients"
        );
        assert_eq!(rr(63401, 63400, Some("244.0.0.1"), ""), None, "eBGP is never an RR client");
    }
}
