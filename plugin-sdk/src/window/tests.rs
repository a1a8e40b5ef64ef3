//! Each window kind, lateness and session merges, driven as the keyed
//! driver drives them (state and context across calls; timers fired by
//! the test when the watermark passes them).

use serde::{Deserialize, Serialize};

use super::*;

/// Count and sum of the events' values (numbers).
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Sum {
    count: u64,
    sum: i64,
}

impl Aggregate for Sum {
    fn add(&mut self, ev: &Event) -> Result<()> {
        self.count += 1;
        self.sum += ev.value_str()?.parse::<i64>().map_err(Error::msg)?;
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.count += other.count;
        self.sum += other.sum;
        Ok(())
    }

    fn emit(&self, key: &[u8], w: Window) -> Result<Output> {
        Ok(Output::new(Event::new(format!(
            "{}[{},{}):{}/{}",
            String::from_utf8_lossy(key),
            w.start_ms,
            w.end_ms,
            self.count,
            self.sum
        ))))
    }
}

/// One key's window operator with a watermark and pending timers, as the
/// host would run it.
struct Harness {
    spec: WindowSpec,
    state: State<WindowState<Sum>>,
    timers: Vec<i64>,
    watermark: Option<i64>,
    out: Vec<String>,
    late: Vec<String>,
}

impl Harness {
    fn new(kind: WindowKind, lateness: i64, late_route: Option<&'static str>) -> Self {
        Self {
            spec: WindowSpec {
                kind,
                allowed_lateness_ms: lateness,
                late_route,
            },
            state: State::for_test(None),
            timers: Vec::new(),
            watermark: None,
            out: Vec::new(),
            late: Vec::new(),
        }
    }

    fn apply_timers(&mut self, ctx: &Context<()>) {
        for (set, at) in ctx.timers_for_test() {
            if set {
                if !self.timers.contains(&at) {
                    self.timers.push(at);
                }
            } else {
                self.timers.retain(|t| *t != at);
            }
        }
    }

    /// An event at `t` with value `v`.
    fn event(&mut self, t: i64, v: i64) -> Result<()> {
        let mut ctx = Context::for_test(b"k", self.watermark, ());
        let mut ev = Event::new(v.to_string());
        ev.set_timestamp_ms(t);
        let outs = on_event(&self.spec, ev, &mut self.state, &mut ctx)?;
        for o in outs {
            assert_eq!(o.route(), self.spec.late_route);
            assert!(o.event().header_str("weir.late").is_some());
            self.late.push(o.event().value_str().unwrap().to_owned());
        }
        self.apply_timers(&ctx);
        Ok(())
    }

    /// Moves the watermark and fires the due timers, in time order.
    fn watermark(&mut self, wm: i64) {
        self.watermark = Some(wm);
        self.timers.sort_unstable();
        let due: Vec<i64> = self.timers.iter().copied().filter(|t| *t <= wm).collect();
        self.timers.retain(|t| *t > wm);
        for at in due {
            let mut ctx = Context::for_test(b"k", Some(wm), ());
            let outs = on_timer(&self.spec, b"k", at, &mut self.state, &mut ctx).unwrap();
            for o in outs {
                self.out.push(o.event().value_str().unwrap().to_owned());
            }
            self.apply_timers(&ctx);
        }
    }
}

#[test]
fn tumbling_windows_emit_when_the_watermark_passes_their_end() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 0, Some("late"));
    for (t, v) in [(1, 1), (5, 2), (12, 10), (9, 3)] {
        h.event(t, v).unwrap();
    }
    h.watermark(9);
    assert!(h.out.is_empty(), "window [0,10) is still open at 9");
    h.watermark(10);
    assert_eq!(h.out, vec!["k[0,10):3/6"]);
    h.watermark(25);
    assert_eq!(h.out, vec!["k[0,10):3/6", "k[10,20):1/10"]);
    assert!(
        !h.state.is_set(),
        "no open window: the key's state is deleted"
    );
    assert!(h.timers.is_empty());
}

#[test]
fn lateness_counts_out_of_order_events_then_routes_late_ones() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 5, Some("late"));
    h.event(3, 1).unwrap();
    h.watermark(12); // past the end, within the lateness: still open
    assert!(h.out.is_empty());
    h.event(8, 2).unwrap(); // out of order, within the lateness: counted
    h.watermark(15);
    assert_eq!(h.out, vec!["k[0,10):2/3"]);
    h.event(7, 100).unwrap(); // its window is closed: late
    assert_eq!(h.late, vec!["100"]);
    h.watermark(100);
    assert_eq!(h.out.len(), 1, "the late event opened no window");

    // Without a late route: the late event fails with the reason.
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 0, None);
    h.watermark(50);
    let err = h.event(3, 1).unwrap_err();
    assert!(
        err.message().starts_with("late event: event time 3 ms"),
        "{}",
        err.message()
    );
}

#[test]
fn hopping_windows_overlap() {
    let mut h = Harness::new(
        WindowKind::Hopping {
            size_ms: 10,
            hop_ms: 5,
        },
        0,
        Some("late"),
    );
    h.event(7, 1).unwrap(); // in [0,10) and [5,15)
    h.event(12, 2).unwrap(); // in [5,15) and [10,20)
    h.watermark(100);
    assert_eq!(h.out, vec!["k[0,10):1/1", "k[5,15):2/3", "k[10,20):1/2"]);
    // An event whose earlier window closed but a later one is open joins
    // the open one only.
    let mut h = Harness::new(
        WindowKind::Hopping {
            size_ms: 10,
            hop_ms: 5,
        },
        0,
        Some("late"),
    );
    h.watermark(10);
    h.event(7, 1).unwrap();
    h.watermark(100);
    assert_eq!(h.out, vec!["k[5,15):1/1"]);
    assert!(h.late.is_empty());
}

#[test]
fn sliding_windows_end_at_each_event() {
    let mut h = Harness::new(WindowKind::Sliding { size_ms: 10 }, 0, Some("late"));
    for (t, v) in [(0, 1), (5, 2), (12, 4), (30, 8)] {
        h.event(t, v).unwrap();
    }
    h.watermark(100);
    assert_eq!(
        h.out,
        vec!["k[-9,1):1/1", "k[-4,6):2/3", "k[3,13):2/6", "k[21,31):1/8"]
    );
    assert!(!h.state.is_set());
}

#[test]
fn session_windows_merge_and_close_after_the_gap() {
    let mut h = Harness::new(WindowKind::Session { gap_ms: 10 }, 0, Some("late"));
    h.event(0, 1).unwrap(); // [0,10)
    h.event(30, 2).unwrap(); // [30,40)
    h.event(15, 4).unwrap(); // [15,25): separate so far
    assert_eq!(h.state.get().unwrap().panes.len(), 3);
    h.event(8, 8).unwrap(); // [8,18): joins [0,10) and [15,25) into [0,25)
    let panes: Vec<Window> = h
        .state
        .get()
        .unwrap()
        .panes
        .iter()
        .map(|p| p.window)
        .collect();
    assert_eq!(
        panes,
        vec![
            Window {
                start_ms: 0,
                end_ms: 25
            },
            Window {
                start_ms: 30,
                end_ms: 40
            }
        ]
    );
    assert_eq!(
        h.timers.len(),
        2,
        "the merged sessions' timers were cancelled: {:?}",
        h.timers
    );
    h.watermark(24);
    assert!(h.out.is_empty());
    h.watermark(100);
    assert_eq!(h.out, vec!["k[0,25):3/13", "k[30,40):1/2"]);
}

#[test]
fn session_late_only_when_no_open_session_holds_it() {
    let mut h = Harness::new(WindowKind::Session { gap_ms: 10 }, 0, Some("late"));
    h.event(20, 1).unwrap(); // [20,30)
    h.event(26, 1).unwrap(); // -> [20,36)
    h.watermark(31);
    // 21 + 10 = 31 <= 31: its own window would be closed, but the open
    // session [20,36) holds it.
    h.event(21, 5).unwrap();
    assert!(h.late.is_empty());
    h.event(5, 9).unwrap(); // nothing open near it: late
    assert_eq!(h.late, vec!["9"]);
    h.watermark(36);
    assert_eq!(h.out, vec!["k[20,36):3/7"]);
}

#[test]
fn a_bad_event_fails_with_the_aggregates_reason() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 0, Some("late"));
    let mut ctx = Context::for_test(b"k", None, ());
    let mut ev = Event::new("not a number");
    ev.set_timestamp_ms(1);
    assert!(on_event(&h.spec, ev, &mut h.state, &mut ctx).is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration_ms("60s"), Some(60_000));
    assert_eq!(parse_duration_ms("500ms"), Some(500));
    assert_eq!(parse_duration_ms("5m"), Some(300_000));
    assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
    assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
    assert_eq!(parse_duration_ms("5"), None);
    assert_eq!(parse_duration_ms("s"), None);
    assert_eq!(parse_duration_ms("3 weeks"), None);
}
