//! Routing: which channels get an event. Pure functions of the normalised event; no I/O.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::config::{ChannelConfig, RouteConfig};
use crate::event::EventType;

/// The compiled `[[routes]]`.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's name (or `route N`).
    pub name: String,
    /// Event types it takes.
    pub events: Vec<EventType>,
    /// Channels it sends to.
    pub channels: Vec<String>,
    conditions: Vec<(String, Vec<Condition>)>,
    /// Ends evaluation once matched.
    pub stop: bool,
}

/// One test a route made of an event, for the console's route tester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was tested, e.g. ``evaluation.user_sentiment` is "negative"``.
    pub test: String,
    /// The event's value there (JSON), or `(absent)`.
    pub found: String,
    /// Whether the test held.
    pub held: bool,
}

/// A problem with one route, found while compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProblem {
    /// 0-based position in `[[routes]]`.
    pub index: usize,
    /// The route's name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Condition {
    Equals(Value),
    OneOf(Vec<Value>),
    Regex(Regex),
    Not(Value),
    NotIn(Vec<Value>),
    Compare(Comparison, f64),
    Exists(bool),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

const OPERATORS: &str = "regex, not, not_in, gt, gte, lt, lte, exists";

impl Router {
    /// Compiles routes, checking channel names, event types, operators and regexes.
    pub fn compile(
        routes: &[RouteConfig],
        channels: &BTreeMap<String, ChannelConfig>,
    ) -> Result<Router, Vec<RouteProblem>> {
        let mut problems = Vec::new();
        let mut compiled = Vec::new();
        for (index, cfg) in routes.iter().enumerate() {
            let name = cfg.name.clone().unwrap_or_else(|| format!("route {}", index + 1));
            let mut fail = |message: String| problems.push(RouteProblem { index, name: name.clone(), message });
            let events = match &cfg.events {
                None => vec![EventType::Message, EventType::CallEnded],
                Some(names) => names
                    .iter()
                    .filter_map(|n| {
                        let t = EventType::from_name(n);
                        if t.is_none() {
                            fail(format!("unknown event type `{n}` in `events` (known: message, call_ended, test, call_started, call_timed_out)"));
                        }
                        t
                    })
                    .collect(),
            };
            if cfg.channels.is_empty() {
                fail("`channels` is empty".into());
            }
            for ch in &cfg.channels {
                if !channels.contains_key(ch) {
                    let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                    fail(format!("unknown channel `{ch}` (defined: {})", known.join(", ")));
                }
            }
            let mut conditions = Vec::new();
            for (path, spec) in &cfg.conditions {
                match compile_condition(spec) {
                    Ok(c) => conditions.push((path.clone(), c)),
                    Err(m) => fail(format!("match `{path}`: {m}")),
                }
            }
            compiled.push(Route { name, events, channels: cfg.channels.clone(), conditions, stop: cfg.stop });
        }
        if problems.is_empty() {
            Ok(Router { routes: compiled })
        } else {
            Err(problems)
        }
    }

    /// The compiled routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Whether any route has `match` conditions, so routing needs the event as JSON (without
    /// them the event type decides, and intake skips building that JSON tree).
    pub fn needs_context(&self) -> bool {
        self.routes.iter().any(|r| !r.conditions.is_empty())
    }

    /// Channels that get an event, each once, in the order routes name them. `context` is the
    /// serialised [`crate::event::Event`].
    pub fn route(&self, event_type: EventType, context: &Value) -> Vec<String> {
        self.route_named(event_type, context).1
    }

    /// The names of the routes that matched, and the channels as [`Router::route`] gives them.
    pub fn route_named(&self, event_type: EventType, context: &Value) -> (Vec<String>, Vec<String>) {
        let (mut names, mut out) = (Vec::new(), Vec::<String>::new());
        for route in &self.routes {
            if !route.matches(event_type, context) {
                continue;
            }
            names.push(route.name.clone());
            for ch in &route.channels {
                if !out.contains(ch) {
                    out.push(ch.clone());
                }
            }
            if route.stop {
                break;
            }
        }
        (names, out)
    }
}

impl Route {
    /// Whether this route takes the event.
    pub fn matches(&self, event_type: EventType, context: &Value) -> bool {
        self.events.contains(&event_type)
            && self.conditions.iter().all(|(path, conds)| {
                let value = lookup(context, path);
                conds.iter().all(|c| c.holds(value))
            })
    }

    /// Each of the route's tests on an event, in order, with whether it held (the console's
    /// route tester): the event type first, then every `match` condition.
    pub fn explain(&self, event_type: EventType, context: &Value) -> Vec<Check> {
        let types = self.events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
        let mut checks = vec![Check {
            test: format!("event type is one of: {types}"),
            found: event_type.as_str().to_owned(),
            held: self.events.contains(&event_type),
        }];
        for (path, conds) in &self.conditions {
            let value = lookup(context, path);
            let found = value.map_or_else(|| "(absent)".to_owned(), Value::to_string);
            for c in conds {
                checks.push(Check {
                    test: format!("`{path}` {}", c.describe()),
                    found: found.clone(),
                    held: c.holds(value),
                });
            }
        }
        checks
    }

    /// The `match` conditions as written, for `check`'s table.
    pub fn describe_conditions(&self) -> String {
        self.conditions.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn compile_condition(spec: &Value) -> Result<Vec<Condition>, String> {
    match spec {
        Value::Array(items) => {
            scalars(items)?;
            Ok(vec![Condition::OneOf(items.clone())])
        }
        Value::Object(ops) => {
            if ops.is_empty() {
                return Err(format!("an empty table; use one of the operators {OPERATORS}"));
            }
            ops.iter().map(|(op, arg)| compile_operator(op, arg)).collect()
        }
        Value::Null => Err("null is not a condition".into()),
        scalar => Ok(vec![Condition::Equals(scalar.clone())]),
    }
}

fn compile_operator(op: &str, arg: &Value) -> Result<Condition, String> {
    let number = || arg.as_f64().ok_or_else(|| format!("`{op}` needs a number, not {arg}"));
    Ok(match op {
        "regex" => {
            let pattern = arg.as_str().ok_or_else(|| format!("`regex` needs a string, not {arg}"))?;
            Condition::Regex(Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?)
        }
        "not" => match arg {
            Value::Array(_) | Value::Object(_) => {
                return Err("`not` needs a single value; use `not_in` for a list".into())
            }
            v => Condition::Not(v.clone()),
        },
        "not_in" => match arg {
            Value::Array(items) => {
                scalars(items)?;
                Condition::NotIn(items.clone())
            }
            _ => return Err(format!("`not_in` needs an array, not {arg}")),
        },
        "gt" => Condition::Compare(Comparison::Gt, number()?),
        "gte" => Condition::Compare(Comparison::Gte, number()?),
        "lt" => Condition::Compare(Comparison::Lt, number()?),
        "lte" => Condition::Compare(Comparison::Lte, number()?),
        "exists" => Condition::Exists(arg.as_bool().ok_or_else(|| format!("`exists` needs true or false, not {arg}"))?),
        other => return Err(format!("unknown operator `{other}` (known: {OPERATORS})")),
    })
}

fn scalars(items: &[Value]) -> Result<(), String> {
    match items.iter().find(|v| v.is_array() || v.is_object()) {
        Some(v) => Err(format!("a list may hold only strings, numbers and booleans, not {v}")),
        None => Ok(()),
    }
}

impl Condition {
    /// The condition in words.
    fn describe(&self) -> String {
        let list = |items: &[Value]| items.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Condition::Equals(v) => format!("is {v}"),
            Condition::OneOf(items) => format!("is one of {}", list(items)),
            Condition::Regex(re) => format!("matches /{}/", re.as_str()),
            Condition::Not(v) => format!("is not {v}"),
            Condition::NotIn(items) => format!("is none of {}", list(items)),
            Condition::Compare(op, n) => {
                let op = match op {
                    Comparison::Gt => ">",
                    Comparison::Gte => "≥",
                    Comparison::Lt => "<",
                    Comparison::Lte => "≤",
                };
                format!("{op} {n}")
            }
            Condition::Exists(true) => "exists".into(),
            Condition::Exists(false) => "is absent".into(),
        }
    }

    fn holds(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        match self {
            Condition::Equals(want) => value.is_some_and(|v| equals(v, want)),
            Condition::OneOf(wants) => value.is_some_and(|v| wants.iter().any(|w| equals(v, w))),
            Condition::Regex(re) => value.and_then(as_text).is_some_and(|s| re.is_match(&s)),
            Condition::Not(want) => !value.is_some_and(|v| equals(v, want)),
            Condition::NotIn(wants) => !value.is_some_and(|v| wants.iter().any(|w| equals(v, w))),
            Condition::Compare(op, limit) => value.and_then(as_number).is_some_and(|n| match op {
                Comparison::Gt => n > *limit,
                Comparison::Gte => n >= *limit,
                Comparison::Lt => n < *limit,
                Comparison::Lte => n <= *limit,
            }),
            Condition::Exists(want) => value.is_some() == *want,
        }
    }
}

/// Equality where numbers and numeric strings compare as numbers.
fn equals(have: &Value, want: &Value) -> bool {
    match (as_number(have), as_number(want)) {
        (Some(a), Some(b)) if have.is_number() || want.is_number() => a == b,
        _ => have == want,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at a dotted path (`call_data.agentId`, `messages.0.sender`), if any.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
