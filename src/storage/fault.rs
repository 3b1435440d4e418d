//! Fault injection for the tests of crash consistency: with
//! `DIND_STORAGE_FAULT=POINT` in its environment, `dind-init storage` ends at
//! once (exit 86, no cleanup, as a crash would) when it reaches POINT.
//! Nothing else reads the variable; `dind-init storage fault-points` lists
//! the points, in the order a start and a stop meet them.

/// The exit status of a process ended at a fault point.
pub const FAULT_EXIT: i32 = 86;

/// Every fault point, in order.
pub const FAULT_POINTS: &[&str] = &[
    "start.journal-recovered",
    "start.live-copied",
    "start.owner-written",
    "start.mounted",
    "stop.frozen",
    "stop.journal-copying",
    "stop.copied",
    "stop.fsynced",
    "stop.journal-copied",
    "stop.renamed",
    "stop.dir-fsynced",
    "stop.journal-removed",
    "stop.unmounted",
    "stop.live-removed",
];

/// Whether the process must end at `point`, given the variable's value.
pub fn hit(point: &str, requested: Option<&str>) -> bool {
    requested.is_some_and(|r| r == point)
}

/// Ends the process at `point` when the environment asks for it.
pub fn point(point: &str) {
    debug_assert!(FAULT_POINTS.contains(&point), "{point}");
    let requested = std::env::var("DIND_STORAGE_FAULT").ok();
    if hit(point, requested.as_deref()) {
        eprintln!("dind-init storage: fault point {point} hit");
        std::process::exit(FAULT_EXIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_point_hits() {
        assert!(hit("stop.copied", Some("stop.copied")));
        assert!(!hit("stop.copied", Some("stop.renamed")));
        assert!(!hit("stop.copied", None));
        let mut sorted = FAULT_POINTS.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), FAULT_POINTS.len());
    }
}
