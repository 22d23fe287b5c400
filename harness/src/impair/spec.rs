//! What an impairment is, and how the operator writes it: one `field: value` per line (or separated by commas),
//! e.g. `delay: 40ms`, `jitter: 5ms`, `loss: 1%`, `loss: burst 2% 25%`, `duplicate: 1%`, `reorder: 5%`,
//! `corrupt: 0.1%`, `rate: 10mbit`. Fields not given keep their default (no impairment).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A field that could not be read: every variant names the field and the value it was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("{field}: {value:?} is not {expected}")]
    Invalid { field: String, value: String, expected: &'static str },
    #[error("unknown impairment field {field:?} (value {value:?}); known: {}", FIELDS.join(", "))]
    UnknownField { field: String, value: String },
    #[error("{text:?}: expected `field: value`, e.g. `delay: 40ms`")]
    Syntax { text: String },
}

/// The fields [`Impairment::set`] knows, in the order [`Impairment::fields`] writes them.
pub const FIELDS: [&str; 7] = ["delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "rate"];

/// Which packets are lost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Loss {
    #[default]
    None,
    /// Each packet independently, with this probability (percent).
    Random { percent: f64 },
    /// Gilbert-Elliott: `p` = P(good → bad) and `r` = P(bad → good) per packet (percent); every packet is lost
    /// in the bad state and none in the good one, so bursts are `1/r` packets long on average and the long-run
    /// loss is `p / (p + r)`.
    Burst { p: f64, r: f64 },
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::None => write!(f, "none"),
            Loss::Random { percent } => write!(f, "{percent}%"),
            Loss::Burst { p, r } => write!(f, "burst {p}% {r}%"),
        }
    }
}

/// One direction's impairment, netem's knobs: see the module's doc for the operator's syntax.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Impairment {
    pub delay: Duration,
    /// Each packet's delay is `delay ± U(0, jitter)`, never below zero.
    pub jitter: Duration,
    pub loss: Loss,
    /// Percent of packets delivered twice.
    pub duplicate: f64,
    /// Percent of packets sent at once, without the delay (so that they overtake the delayed ones), like netem's
    /// `reorder`.
    pub reorder: f64,
    /// Percent of packets with one bit flipped after the IP header.
    pub corrupt: f64,
    /// Serialise packets at this rate (kbit/s, 1 kbit = 1000 bit), like netem's `rate`.
    pub rate: Option<u64>,
}

impl Impairment {
    /// Read the operator's text: `field: value` items, one per line or separated by commas; blank lines and
    /// `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Impairment, ParseError> {
        let mut imp = Impairment::default();
        for item in text.lines().map(|l| l.split('#').next().unwrap_or("")).flat_map(|l| l.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((field, value)) = item.split_once(':') else {
                return Err(ParseError::Syntax { text: item.to_string() });
            };
            imp.set(field.trim(), value.trim())?;
        }
        Ok(imp)
    }

    /// Set one field from its operator string (`set("loss", "burst 2% 25%")`).
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ParseError> {
        let invalid = |expected| ParseError::Invalid { field: field.to_string(), value: value.to_string(), expected };
        match field {
            "delay" => self.delay = parse_duration(value).ok_or_else(|| invalid("a duration (40ms, 1.5s, 250us)"))?,
            "jitter" => self.jitter = parse_duration(value).ok_or_else(|| invalid("a duration (5ms)"))?,
            "loss" => self.loss = parse_loss(value).ok_or_else(|| invalid("a percentage (1%) or `burst P% R%`"))?,
            "duplicate" => self.duplicate = parse_percent(value).ok_or_else(|| invalid("a percentage (0-100%)"))?,
            "reorder" => self.reorder = parse_percent(value).ok_or_else(|| invalid("a percentage (0-100%)"))?,
            "corrupt" => self.corrupt = parse_percent(value).ok_or_else(|| invalid("a percentage (0-100%)"))?,
            "rate" => {
                self.rate = if value == "none" {
                    None
                } else {
                    Some(parse_rate(value).ok_or_else(|| invalid("a rate (10mbit, 512kbit, 1gbit)"))?)
                }
            }
            _ => return Err(ParseError::UnknownField { field: field.to_string(), value: value.to_string() }),
        }
        Ok(())
    }

    /// Every field with its operator string, in [`FIELDS`] order (what [`Impairment::parse`] reads back).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("delay", format_duration(self.delay)),
            ("jitter", format_duration(self.jitter)),
            ("loss", self.loss.to_string()),
            ("duplicate", format!("{}%", self.duplicate)),
            ("reorder", format!("{}%", self.reorder)),
            ("corrupt", format!("{}%", self.corrupt)),
            ("rate", self.rate.map_or_else(|| "none".to_string(), |k| format!("{k}kbit"))),
        ]
    }
}

impl FromStr for Impairment {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Impairment::parse(s)
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.fields().into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        write!(f, "{}", items.join(", "))
    }
}

impl TryFrom<BTreeMap<String, String>> for Impairment {
    type Error = ParseError;
    fn try_from(m: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        let mut imp = Impairment::default();
        for (k, v) in &m {
            imp.set(k, v.trim())?;
        }
        Ok(imp)
    }
}

impl From<Impairment> for BTreeMap<String, String> {
    fn from(i: Impairment) -> Self {
        i.fields().into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Which forwarded packets an impairment applies to, between the WAN's two sides `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "a->b")]
    AtoB,
    #[serde(rename = "b->a")]
    BtoA,
    #[default]
    #[serde(rename = "both")]
    Both,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::AtoB => "a->b",
            Direction::BtoA => "b->a",
            Direction::Both => "both",
        })
    }
}

impl FromStr for Direction {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().replace(' ', "").as_str() {
            "a->b" | "a→b" | "ab" => Ok(Direction::AtoB),
            "b->a" | "b→a" | "ba" => Ok(Direction::BtoA),
            "both" | "a<->b" | "a↔b" => Ok(Direction::Both),
            _ => Err(ParseError::Invalid {
                field: "direction".into(),
                value: s.to_string(),
                expected: "a->b, b->a or both",
            }),
        }
    }
}

/// `40ms`, `1.5s`, `250us`, `0`: a non-negative decimal with a unit (ns, us, ms, s; a bare 0 needs none).
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v == "0" {
        return Some(Duration::ZERO);
    }
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        _ => return None,
    };
    let secs = n * scale;
    (secs.is_finite() && (0.0..3600.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

fn format_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1000) {
        format!("{}ns", d.as_nanos())
    } else if !d.subsec_micros().is_multiple_of(1000) {
        format!("{}us", d.as_micros())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `1%`, `0.1%` or a bare `1`: 0 to 100.
fn parse_percent(v: &str) -> Option<f64> {
    let n: f64 = v.trim().strip_suffix('%').unwrap_or(v.trim()).trim().parse().ok()?;
    (n.is_finite() && (0.0..=100.0).contains(&n)).then_some(n)
}

fn parse_loss(v: &str) -> Option<Loss> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match words.as_slice() {
        ["none"] => Some(Loss::None),
        ["burst", p, r] | ["gemodel", p, r] => {
            let (p, r) = (parse_percent(p)?, parse_percent(r)?);
            // r = 0 would never leave the bad state: every packet after the first burst lost.
            (r > 0.0).then_some(Loss::Burst { p, r })
        }
        [p] => parse_percent(p).map(|percent| if percent == 0.0 { Loss::None } else { Loss::Random { percent } }),
        _ => None,
    }
}

/// tc's rate units (decimal): `bit`, `kbit`, `mbit`, `gbit`, to kbit/s (at least 1).
fn parse_rate(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let kbit = match unit.trim() {
        "bit" => n / 1e3,
        "kbit" => n,
        "mbit" => n * 1e3,
        "gbit" => n * 1e6,
        _ => return None,
    };
    (kbit.is_finite() && (1.0..1e9).contains(&kbit)).then_some(kbit.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let imp = Impairment::parse(
            "delay: 40ms\njitter: 5ms\nloss: 1%\nduplicate: 1%, reorder: 5%\ncorrupt: 0.1%  # rare\nrate: 10mbit\n",
        )
        .unwrap();
        assert_eq!(imp.delay, Duration::from_millis(40));
        assert_eq!(imp.jitter, Duration::from_millis(5));
        assert_eq!(imp.loss, Loss::Random { percent: 1.0 });
        assert_eq!((imp.duplicate, imp.reorder, imp.corrupt), (1.0, 5.0, 0.1));
        assert_eq!(imp.rate, Some(10_000));
        assert_eq!(Impairment::parse("loss: burst 2% 25%").unwrap().loss, Loss::Burst { p: 2.0, r: 25.0 });
        assert_eq!(Impairment::parse("loss: 0%").unwrap().loss, Loss::None);
        assert_eq!(Impairment::parse("delay: 1.5s").unwrap().delay, Duration::from_millis(1500));
        assert_eq!(Impairment::parse("delay: 250us").unwrap().delay, Duration::from_micros(250));
        assert_eq!(Impairment::parse("rate: 512kbit").unwrap().rate, Some(512));
        assert_eq!(Impairment::parse("").unwrap(), Impairment::default());
    }

    #[test]
    fn bad_input_names_the_field_and_the_value() {
        let err = |t: &str| Impairment::parse(t).unwrap_err();
        let e = err("delay: 40 parsecs");
        assert!(matches!(&e, ParseError::Invalid { field, value, .. } if field == "delay" && value == "40 parsecs"));
        assert_eq!(e.to_string(), r#"delay: "40 parsecs" is not a duration (40ms, 1.5s, 250us)"#);
        let e = err("loss: 150%");
        assert!(e.to_string().starts_with(r#"loss: "150%" is not"#), "{e}");
        assert!(err("loss: burst 2%").to_string().contains(r#""burst 2%""#));
        assert!(err("loss: burst 2% 0%").to_string().starts_with("loss:"));
        assert!(err("duplicate: -1%").to_string().starts_with(r#"duplicate: "-1%""#));
        assert!(err("rate: 10 furlongs").to_string().starts_with(r#"rate: "10 furlongs""#));
        assert!(err("jitter: 5").to_string().starts_with("jitter:"));
        let e = err("latency: 40ms");
        assert_eq!(e, ParseError::UnknownField { field: "latency".into(), value: "40ms".into() });
        assert!(e.to_string().contains("known: delay, jitter"), "{e}");
        assert_eq!(err("delay 40ms"), ParseError::Syntax { text: "delay 40ms".into() });
    }

    #[test]
    fn operator_strings_and_json_round_trip() {
        let imp =
            Impairment::parse("delay: 40ms, jitter: 1500us, loss: burst 2% 25%, corrupt: 0.1%, rate: 10mbit").unwrap();
        assert_eq!(Impairment::parse(&imp.to_string()).unwrap(), imp);
        let json = serde_json::to_string(&imp).unwrap();
        assert!(json.contains(r#""delay":"40ms""#), "{json}");
        assert_eq!(serde_json::from_str::<Impairment>(&json).unwrap(), imp);
        // A spec file names only the fields it sets; a bad one is an error naming the field.
        let partial: Impairment = serde_json::from_str(r#"{"delay": "20ms"}"#).unwrap();
        assert_eq!(partial, Impairment { delay: Duration::from_millis(20), ..Default::default() });
        let bad = serde_json::from_str::<Impairment>(r#"{"reorder": "lots"}"#).unwrap_err();
        assert!(bad.to_string().contains(r#"reorder: "lots""#), "{bad}");
    }

    #[test]
    fn directions() {
        assert_eq!("a->b".parse::<Direction>().unwrap(), Direction::AtoB);
        assert_eq!("b → a".parse::<Direction>().unwrap(), Direction::BtoA);
        assert_eq!("both".parse::<Direction>().unwrap(), Direction::Both);
        assert!("sideways".parse::<Direction>().unwrap_err().to_string().starts_with(r#"direction: "sideways""#));
        for d in [Direction::AtoB, Direction::BtoA, Direction::Both] {
            assert_eq!(d.to_string().parse::<Direction>().unwrap(), d);
        }
    }
}
