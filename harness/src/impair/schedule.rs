//! The per-packet decision, pure and deterministic: a seeded RNG, the Gilbert-Elliott state and the rate's
//! link clock, and nothing else. Time is a [`Duration`] since any fixed start (the data path's clock).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::spec::{Impairment, Loss};

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Drop,
    Deliver {
        /// When to let it go (never before the packet arrived).
        at: Duration,
        /// Deliver a second copy too.
        duplicate: bool,
        /// Flip one bit after the IP header: which one, as a random number for [`super::corrupt_packet`].
        corrupt: Option<u64>,
        /// Sent at once, without the delay (netem's `reorder`).
        reordered: bool,
    },
}

/// Decides, per packet, as netem would: duplicate, loss, corruption, then delay (or reorder), then rate.
#[derive(Debug)]
pub struct Scheduler {
    imp: Impairment,
    rng: StdRng,
    /// Gilbert-Elliott: in the bad (losing) state.
    bad: bool,
    /// With a rate: when the link is free again.
    link_free: Duration,
}

impl Scheduler {
    pub fn new(imp: Impairment, seed: u64) -> Scheduler {
        Scheduler { imp, rng: StdRng::seed_from_u64(seed), bad: false, link_free: Duration::ZERO }
    }

    pub fn impairment(&self) -> &Impairment {
        &self.imp
    }

    fn chance(&mut self, percent: f64) -> bool {
        percent > 0.0 && self.rng.random::<f64>() * 100.0 < percent
    }

    fn lost(&mut self) -> bool {
        match self.imp.loss {
            Loss::None => false,
            Loss::Random { percent } => self.chance(percent),
            Loss::Burst { p, r } => {
                self.bad = if self.bad { !self.chance(r) } else { self.chance(p) };
                self.bad
            }
        }
    }

    /// The decision for a packet of `len` bytes that arrived at `now`.
    pub fn decide(&mut self, now: Duration, len: usize) -> Decision {
        let duplicate = self.chance(self.imp.duplicate);
        if self.lost() {
            return Decision::Drop;
        }
        let corrupt = if self.chance(self.imp.corrupt) { Some(self.rng.random::<u64>()) } else { None };
        let reordered = !self.imp.delay.is_zero() && self.chance(self.imp.reorder);
        let mut at = if reordered { now } else { now + self.jittered_delay() };
        if let Some(kbit) = self.imp.rate {
            // Serialise at the rate: the packet leaves once the link is free and its bits are on the wire.
            let tx = Duration::from_secs_f64(len as f64 * 8.0 / (kbit as f64 * 1000.0));
            at = at.max(self.link_free) + tx;
            self.link_free = at;
        }
        Decision::Deliver { at, duplicate, corrupt, reordered }
    }

    /// `delay ± U(0, jitter)`, at least zero.
    fn jittered_delay(&mut self) -> Duration {
        let (d, j) = (self.imp.delay, self.imp.jitter);
        if j.is_zero() {
            return d;
        }
        let off = self.rng.random_range(-(j.as_nanos() as i128)..=j.as_nanos() as i128);
        Duration::from_nanos((d.as_nanos() as i128 + off).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 100_000;

    fn run(imp: Impairment, seed: u64) -> Vec<Decision> {
        let mut s = Scheduler::new(imp, seed);
        (0..N).map(|i| s.decide(Duration::from_micros(i as u64 * 100), 100)).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn random_loss_rate_within_tolerance() {
        for percent in [1.0, 10.0, 50.0] {
            let d = run(Impairment { loss: Loss::Random { percent }, ..Default::default() }, 7);
            let lost = d.iter().filter(|d| **d == Decision::Drop).count() as f64 / N as f64 * 100.0;
            assert!((lost - percent).abs() < 0.5, "{percent}%: lost {lost}%");
        }
        assert!(run(Impairment::default(), 1).iter().all(|d| *d != Decision::Drop));
    }

    #[test]
    fn burst_loss_mean_burst_length_is_one_over_r() {
        let (p, r) = (2.0, 25.0);
        let d = run(Impairment { loss: Loss::Burst { p, r }, ..Default::default() }, 11);
        let lost: Vec<bool> = d.iter().map(|d| *d == Decision::Drop).collect();
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(lost[0]);
        let dropped = lost.iter().filter(|l| **l).count();
        let mean_burst = dropped as f64 / bursts as f64;
        assert!((mean_burst - 100.0 / r).abs() < 0.2, "mean burst {mean_burst}, want {}", 100.0 / r);
        let rate = dropped as f64 / N as f64;
        let want = p / (p + r);
        assert!((rate - want).abs() < 0.01, "loss {rate}, want {want}");
    }

    #[test]
    fn delay_with_jitter_stays_in_bounds_and_is_never_negative() {
        let imp = Impairment { delay: ms(40), jitter: ms(5), ..Default::default() };
        let mut s = Scheduler::new(imp, 3);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for i in 0..N as u64 {
            let now = Duration::from_micros(i * 10);
            let Decision::Deliver { at, .. } = s.decide(now, 100) else { panic!("no loss configured") };
            lo = lo.min(at - now);
            hi = hi.max(at - now);
        }
        assert!(lo >= ms(35) && hi <= ms(45), "{lo:?}..{hi:?}");
        assert!(lo < ms(36) && hi > ms(44), "jitter spreads over its range: {lo:?}..{hi:?}");
        // Jitter larger than the delay: clamped at zero, never before the packet arrived.
        let mut s = Scheduler::new(Impairment { delay: ms(1), jitter: ms(10), ..Default::default() }, 3);
        let now = ms(100);
        let ats: Vec<Duration> = (0..1000)
            .map(|_| match s.decide(now, 100) {
                Decision::Deliver { at, .. } => at,
                Decision::Drop => unreachable!(),
            })
            .collect();
        assert!(ats.iter().all(|a| *a >= now) && ats.contains(&now));
    }

    #[test]
    fn reorder_fraction_and_flags() {
        let imp = Impairment { delay: ms(10), reorder: 5.0, duplicate: 1.0, corrupt: 0.1, ..Default::default() };
        let d = run(imp, 5);
        let count = |f: &dyn Fn(&Decision) -> bool| d.iter().filter(|x| f(x)).count() as f64 / N as f64 * 100.0;
        let reordered = count(&|x| matches!(x, Decision::Deliver { reordered: true, .. }));
        let dup = count(&|x| matches!(x, Decision::Deliver { duplicate: true, .. }));
        let corrupt = count(&|x| matches!(x, Decision::Deliver { corrupt: Some(_), .. }));
        assert!((reordered - 5.0).abs() < 0.3, "reordered {reordered}%");
        assert!((dup - 1.0).abs() < 0.15, "duplicated {dup}%");
        assert!((corrupt - 0.1).abs() < 0.05, "corrupted {corrupt}%");
        // A reordered packet leaves at once; the others after the delay.
        let mut s = Scheduler::new(Impairment { delay: ms(10), reorder: 100.0, ..Default::default() }, 1);
        assert!(matches!(s.decide(ms(3), 1), Decision::Deliver { at, reordered: true, .. } if at == ms(3)));
        // Without a delay there is nothing to overtake: no packet is counted as reordered.
        assert!(run(Impairment { reorder: 50.0, ..Default::default() }, 1)
            .iter()
            .all(|x| matches!(x, Decision::Deliver { reordered: false, .. })));
    }

    #[test]
    fn rate_serialises_packets() {
        // 1 mbit/s: a 1250-byte packet takes 10 ms on the wire; three at once leave 10 ms apart.
        let mut s = Scheduler::new(Impairment { rate: Some(1000), ..Default::default() }, 1);
        let ats: Vec<Duration> = (0..3)
            .map(|_| match s.decide(Duration::ZERO, 1250) {
                Decision::Deliver { at, .. } => at,
                Decision::Drop => unreachable!(),
            })
            .collect();
        assert_eq!(ats, vec![ms(10), ms(20), ms(30)]);
        // An idle link sends at once (plus the packet's own time).
        assert!(matches!(s.decide(ms(100), 1250), Decision::Deliver { at, .. } if at == ms(110)));
    }

    #[test]
    fn deterministic_with_a_seed() {
        let imp = Impairment {
            delay: ms(20),
            jitter: ms(3),
            loss: Loss::Burst { p: 3.0, r: 30.0 },
            duplicate: 2.0,
            reorder: 4.0,
            corrupt: 1.0,
            rate: None,
        };
        assert_eq!(run(imp.clone(), 42), run(imp.clone(), 42));
        assert_ne!(run(imp.clone(), 42), run(imp, 43));
    }
}
