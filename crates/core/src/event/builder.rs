//! `NewEventBuilder`: events built field by field, without `NewEvent::parse`,
//! for tests that need exact values (a given time, a changed project) or
//! events the parser would refuse. Compiled only for tests and behind the
//! `test-support` feature, so that product code cannot build an event around
//! its checks.

use super::{Actor, Context, NewEvent, Target};
use crate::Timestamp;
use serde_json::{Map, Value};

/// Builds a `NewEvent` without checking it; see the module comment.
#[derive(Debug, Clone)]
pub struct NewEventBuilder {
    event: NewEvent,
}

impl NewEventBuilder {
    /// An event with only its required fields, whose client gave `time`.
    pub fn new(
        id: impl Into<String>,
        time: Timestamp,
        event_type: impl Into<String>,
        action: impl Into<String>,
        actor: Actor,
    ) -> Self {
        Self {
            event: NewEvent {
                id: id.into(),
                time,
                time_given: true,
                event_type: event_type.into(),
                action: action.into(),
                actor,
                project: None,
                app: None,
                version: None,
                target: None,
                details: None,
                context: None,
            },
        }
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = id.into();
        self
    }

    /// A `time` the client gave.
    pub fn time(mut self, time: Timestamp) -> Self {
        self.event.time = time;
        self.event.time_given = true;
        self
    }

    /// A `time` the server filled in at receipt, as when the client left it out.
    pub fn receipt_time(mut self, time: Timestamp) -> Self {
        self.event.time = time;
        self.event.time_given = false;
        self
    }

    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event.event_type = event_type.into();
        self
    }

    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.event.action = action.into();
        self
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.event.actor = actor;
        self
    }

    pub fn project(mut self, project: Option<String>) -> Self {
        self.event.project = project;
        self
    }

    pub fn app(mut self, app: Option<String>) -> Self {
        self.event.app = app;
        self
    }

    pub fn version(mut self, version: Option<String>) -> Self {
        self.event.version = version;
        self
    }

    pub fn target(mut self, target: Option<Target>) -> Self {
        self.event.target = target;
        self
    }

    pub fn details(mut self, details: Option<Map<String, Value>>) -> Self {
        self.event.details = details;
        self
    }

    pub fn context(mut self, context: Option<Context>) -> Self {
        self.event.context = context;
        self
    }

    pub fn build(self) -> NewEvent {
        self.event
    }
}

impl NewEvent {
    /// A builder starting from this event, to change some of its fields.
    pub fn into_builder(self) -> NewEventBuilder {
        NewEventBuilder { event: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Taxonomy;
    use serde_json::json;

    #[test]
    fn builds_the_event_the_parser_makes_from_the_same_fields() {
        let time = Timestamp::from_micros(1_764_000_000_000_000);
        let actor = Actor {
            id: "u-1".into(),
            name: Some("Ada".into()),
            email: None,
        };
        let built = NewEventBuilder::new("e-1", time, "Test Case", "Update", actor)
            .project(Some("Checkout".into()))
            .build();
        let parsed = NewEvent::parse(
            &json!({"id": "e-1", "time": time.to_rfc3339(), "event_type": "test case",
                    "action": "update", "actor": {"id": "u-1", "name": "Ada"}, "project": "Checkout"}),
            &Taxonomy::default(),
            time,
        )
        .unwrap();
        assert_eq!(built, parsed);
        let changed = built.into_builder().receipt_time(time).build();
        assert!(!changed.time_given());
        assert_ne!(changed, parsed);
    }
}
