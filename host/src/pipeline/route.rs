//! Where a plugin may send an event besides the next stage: the pipeline's
//! named outputs. A stage resolves each route a plugin names here, once; an
//! unknown name makes the event a dead letter. The place a name resolves to
//! is the output's place in the fan-out, so what a stage routed reaches its
//! sink without being looked up again.

use std::sync::Arc;

use crate::event::Event;

/// The outputs a stage's plugin may route to, in fan-out order.
#[derive(Clone, Debug)]
pub struct Routes {
    names: Vec<Arc<str>>,
    /// Any name is taken (and given the next place): `weir plugin test`,
    /// which has no outputs to check against.
    open: bool,
}

impl Routes {
    /// Exactly these outputs (a pipeline's), in fan-out order.
    pub fn only<S: Into<Arc<str>>>(names: impl IntoIterator<Item = S>) -> Self {
        Self {
            names: names.into_iter().map(Into::into).collect(),
            open: false,
        }
    }

    /// Any name, each given a place when first used.
    pub fn any() -> Self {
        Self {
            names: Vec::new(),
            open: true,
        }
    }

    /// The place of output `name`; `None`: not an output of this pipeline.
    pub fn resolve(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| &**n == name) {
            return Some(i);
        }
        if !self.open {
            return None;
        }
        self.names.push(name.into());
        Some(self.names.len() - 1)
    }

    /// The name of the output at `place`.
    pub fn name(&self, place: usize) -> Option<&Arc<str>> {
        self.names.get(place)
    }

    /// The outputs, in fan-out order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }
}

/// Events stages sent to named outputs, one list per output place (in
/// emission order), travelling with their batch to the fan-out.
#[derive(Debug, Default)]
pub struct Routed(Vec<Vec<Event>>);

impl Routed {
    /// `event` goes to the output at `place` (from [`Routes::resolve`]).
    pub fn push(&mut self, place: usize, event: Event) {
        if self.0.len() <= place {
            self.0.resize_with(place + 1, Vec::new);
        }
        if let Some(events) = self.0.get_mut(place) {
            events.push(event);
        }
    }

    /// How many events were routed.
    pub fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    /// Each place's events, from place 0 on; the list ends after the last
    /// place anything was routed to.
    pub fn into_places(self) -> std::vec::IntoIter<Vec<Event>> {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn ev(n: i64) -> Event {
        Event::new(Vec::new(), 0, Position::new("t".into(), 0, n))
    }

    #[test]
    fn a_pipeline_resolves_its_outputs_only() {
        let mut routes = Routes::only(["alerts", "default"]);
        assert_eq!(routes.resolve("default"), Some(1));
        assert_eq!(routes.resolve("alerts"), Some(0));
        assert_eq!(routes.resolve("nowhere"), None);
        assert_eq!(routes.names().len(), 2);
        let mut any = Routes::any();
        assert_eq!(any.resolve("b"), Some(0));
        assert_eq!(any.resolve("a"), Some(1));
        assert_eq!(any.resolve("b"), Some(0));
        assert_eq!(any.name(1).map(|n| &**n), Some("a"));
    }

    #[test]
    fn routed_events_keep_their_order_per_place() {
        let mut routed = Routed::default();
        assert!(routed.is_empty());
        routed.push(2, ev(0));
        routed.push(0, ev(1));
        routed.push(2, ev(2));
        assert_eq!(routed.len(), 3);
        let places: Vec<Vec<i64>> = routed
            .into_places()
            .map(|events| events.iter().map(|e| e.position.offset).collect())
            .collect();
        assert_eq!(places, [vec![1], vec![], vec![0, 2]]);
    }
}
