//! How much CPU the hypervisor took away during a measurement.
//!
//! On a virtual machine the host runs other guests on the same cores, and
//! the time it takes from this one ("steal", `/proc/stat`) is time polo's
//! threads were ready to run and did not. On the 2-core CI machine it ranged
//! from 0% to 23% of CPU time within one session, and throughput and tail
//! latency moved with it (OwnTracks p99 4.1 ms at 0.1%, 36 ms at 23%). Every
//! measurement prints it, so a figure can be read together with the
//! conditions it was taken in.

/// CPU time counters read from `/proc/stat` at the start of a measurement.
pub struct StealMeter {
    start: Option<(u64, u64)>,
}

/// `(steal, total)` jiffies over all CPUs, or `None` off Linux.
fn read() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let steal = *fields.get(7)?;
    let total = fields.iter().take(8).sum();
    Some((steal, total))
}

impl StealMeter {
    /// Starts measuring now.
    pub fn start() -> Self {
        Self { start: read() }
    }

    /// The share of all CPU time stolen since [`StealMeter::start`], in percent.
    #[allow(clippy::cast_precision_loss)]
    pub fn percent(&self) -> Option<f64> {
        let (steal0, total0) = self.start?;
        let (steal1, total1) = read()?;
        let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
        Some(steal1.saturating_sub(steal0) as f64 * 100.0 / total as f64)
    }

    /// `"host steal 3.1% of CPU time"`, or a note that it is unknown.
    pub fn describe(&self) -> String {
        match self.percent() {
            Some(p) => format!("host steal {p:.1}% of CPU time"),
            None => "host steal unknown (no /proc/stat)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_a_share_of_cpu_time_when_proc_stat_exists() {
        let meter = StealMeter::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        std::thread::sleep(std::time::Duration::from_millis(20));
        match meter.percent() {
            Some(p) => assert!((0.0..=100.0).contains(&p), "{p}"),
            None => assert!(std::fs::read_to_string("/proc/stat").is_err()),
        }
    }
}
