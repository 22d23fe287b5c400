//! No parser panics on any input: every sample, cut at every line and
//! mutated pseudo-randomly, goes through every parser.

use super::*;

const SAMPLES: &[&str] = &[
    include_str!("testdata/bird-a-show-protocols.txt"),
    include_str!("testdata/bird-b-show-protocols.txt"),
    include_str!("testdata/bird-b-show-protocols-all.txt"),
    include_str!("testdata/bird-b-show-protocols-all-early.txt"),
    include_str!("testdata/bird-b-show-protocols-all-node.txt"),
    include_str!("testdata/bird-a-show-route-all.txt"),
    include_str!("testdata/bird-b-show-route-all.txt"),
    include_str!("testdata/bird-b-show-route-all-unresolved.txt"),
    include_str!("testdata/bird-c-show-route-all.txt"),
    include_str!("testdata/bird-b-show-route-all-prefix.txt"),
    include_str!("testdata/bird-b-show-route-all-protocol.txt"),
    include_str!("testdata/bird-a-show-route.txt"),
    include_str!("testdata/bird-b-show-status.txt"),
    include_str!("testdata/raw-b-session.txt"),
    include_str!("testdata/raw-a-show-route.txt"),
    include_str!("testdata/raw-a-show-protocols-all.txt"),
    include_str!("testdata/raw-a-configure-progress.txt"),
    include_str!("testdata/raw-b-configure.txt"),
    include_str!("testdata/raw-b-configure-errors.txt"),
    include_str!("testdata/birdc-b-configure-noas.txt"),
    include_str!("testdata/ip-b-route.txt"),
    include_str!("testdata/ip-b-d-route.txt"),
    include_str!("testdata/ip-b-route-table201.txt"),
    include_str!("testdata/ip-b-route-table-all.txt"),
    include_str!("testdata/ip-b-route-linkdown.txt"),
    include_str!("testdata/ip-b-j-route.json"),
    include_str!("testdata/ip-b-j-d-route.json"),
    include_str!("testdata/ip-b-j-route-table201.json"),
    include_str!("testdata/ip-b-j-d-route-table201.json"),
    include_str!("testdata/ip-b-j-d-route-table-all.json"),
    include_str!("testdata/ip-b-j-route-linkdown.json"),
    include_str!("testdata/ipset-b-list.txt"),
    include_str!("testdata/ipset-b-list-hosts-net.txt"),
    include_str!("testdata/ipset-b-save.txt"),
    include_str!("testdata/iptables-save-c-b.txt"),
    include_str!("testdata/iptables-save-b.txt"),
    include_str!("testdata/iptables-L-cali-INPUT.txt"),
    include_str!("testdata/iptables-L-INPUT.txt"),
    include_str!("testdata/iptables-L-nat-cali-POSTROUTING.txt"),
    include_str!("testdata/iptables-L-all.txt"),
    include_str!("testdata/ping-ok.txt"),
    include_str!("testdata/ping-loss.txt"),
    include_str!("testdata/ping-unreachable.txt"),
    include_str!("testdata/ping-blackhole.txt"),
    include_str!("testdata/ping-silent-loss.txt"),
    include_str!("testdata/ping-partial-loss.txt"),
];

fn run_all(s: &str) {
    let _ = decode_bird(s);
    let _ = parse_protocols(s);
    let _ = parse_protocols_all(s);
    let _ = parse_status(s);
    let _ = parse_configure(s);
    let _ = parse_configure_replies(s);
    let _ = parse_routes(s);
    let _ = parse_ip_route(s);
    let _ = parse_ip_route_text(s);
    let _ = parse_ip_route_json(s);
    let _ = parse_ipset(s);
    let _ = parse_iptables_save(s);
    let _ = parse_iptables_list(s);
    let _ = parse_ping(s);
    let _ = parse_node_status(s);
    // A `|` inside a BIRD field would make calicoctl's table ambiguous too.
    if let Ok(p) =
        parse_protocols(s).map(|p| p.into_iter().filter(|x| !format!("{x:?}").contains('|')).collect::<Vec<_>>())
    {
        let out = render_node_status(&p, true);
        parse_node_status(&out).expect("rendered status parses back");
    }
    if let Ok(r) = parse_ip_route(s) {
        for x in &r {
            let _ = x.to_string();
        }
    }
    let _ = bird::ConfigError::parse(s);
}

/// Tiny deterministic PRNG (xorshift) so the test needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn every_sample_through_every_parser_whole_and_truncated() {
    for s in SAMPLES {
        run_all(s);
        let lines: Vec<&str> = s.lines().collect();
        for cut in 0..lines.len() {
            run_all(&lines[..cut].join("\n"));
            run_all(&lines[cut..].join("\n"));
        }
    }
}

#[test]
fn mutated_samples_never_panic() {
    const ALPHABET: &[char] = &[
        ' ', '\t', '\n', '|', '+', '-', '[', ']', '(', ')', '/', ':', '.', ',', '"', '\\', '*', '!', '?', '0', '9',
        'a', 'Z', '_', '%', '{', '}', 'é', '\u{0}', '\r',
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for s in SAMPLES {
        for _ in 0..60 {
            let mut chars: Vec<char> = s.chars().collect();
            for _ in 0..1 + rng.below(6) {
                if chars.is_empty() {
                    break;
                }
                let i = rng.below(chars.len());
                match rng.below(3) {
                    0 => chars[i] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => {
                        chars.remove(i);
                    }
                    _ => chars.insert(i, ALPHABET[rng.below(ALPHABET.len())]),
                }
            }
            let m: String = chars.into_iter().collect();
            run_all(&m);
        }
    }
}

#[test]
fn everything_serializes_to_json() {
    let routes = parse_routes(SAMPLES[6]).unwrap();
    let j = serde_json::to_string(&routes).unwrap();
    let back: Vec<Route> = serde_json::from_str(&j).unwrap();
    assert_eq!(back, routes);
    let k = parse_ip_route(SAMPLES[29]).unwrap();
    let back: Vec<KernelRoute> = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
    assert_eq!(back, k);
    let t = parse_iptables_save(SAMPLES[34]).unwrap();
    let back: IpTables = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
    let p = parse_protocols_all(SAMPLES[2]).unwrap();
    let back: Vec<ProtocolDetail> = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let ping = parse_ping(SAMPLES[40]).unwrap();
    let back: PingResult = serde_json::from_str(&serde_json::to_string(&ping).unwrap()).unwrap();
    assert_eq!(back, ping);
    let sets = parse_ipset(SAMPLES[31]).unwrap();
    let back: Vec<IpSet> = serde_json::from_str(&serde_json::to_string(&sets).unwrap()).unwrap();
    assert_eq!(back, sets);
}
