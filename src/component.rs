//! Module kinds as the topology sees them: ports, parameters with units and ranges, and a
//! constructor. Each module file exports one [`ModuleSpec`]; the registry in
//! [`crate::topology::registry`] lists them all; `stasim models` prints them.

use std::fmt;

use serde::Deserialize;

use crate::kernel::{Actor, Clock, LinkId};
use crate::txn::{Transaction, TxnType};

/// Largest cycle count (a latency, a service time, an interval) any parameter may give:
/// 2^32 cycles. Times a clock period of at most 1 ms (`Clock::MIN_MHZ`) that stays below the
/// end of simulated time, so adding one to a time never wraps (see `kernel::time`).
pub const MAX_CYCLES: i64 = 1 << 32;

/// Range of every instance's `clock_mhz`, MHz: 1 kHz to 100 GHz.
pub const CLOCK_MHZ_RANGE: (f64, f64) =
    (crate::kernel::Clock::MIN_MHZ, crate::kernel::Clock::MAX_MHZ);

/// Range of every instance's `static_mw` (and the energy table's), mW: up to 1 kW.
pub const STATIC_MW_MAX: f64 = 1e6;

/// Direction of a port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The module receives on it.
    In,
    /// The module sends on it.
    Out,
}

impl Dir {
    /// `input` or `output`.
    pub fn name(self) -> &'static str {
        match self {
            Dir::In => "input",
            Dir::Out => "output",
        }
    }
}

/// One port of a module kind.
#[derive(Copy, Clone, Debug)]
pub struct PortSpec {
    /// Name used in `links:` as `instance.port`.
    pub name: &'static str,
    /// Direction.
    pub dir: Dir,
    /// Transaction type carried.
    pub txn: TxnType,
    /// Whether the port may be left unconnected.
    pub optional: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

impl PortSpec {
    /// A port (const, for module specs).
    pub const fn new(
        name: &'static str,
        dir: Dir,
        txn: TxnType,
        optional: bool,
        doc: &'static str,
    ) -> PortSpec {
        PortSpec {
            name,
            dir,
            txn,
            optional,
            doc,
        }
    }
}

/// The value of a [`ParamType::AutoInt`] parameter that leaves it to the run.
pub const AUTO: &str = "auto";

/// The type and valid range of a parameter.
#[derive(Debug)]
pub enum ParamType {
    /// An integer in `min..=max`.
    Int {
        /// Smallest valid value.
        min: i64,
        /// Largest valid value.
        max: i64,
    },
    /// A real number in `min..=max`.
    Float {
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
    /// A free-form name the module checks when it is built (e.g. a DRAM address mapping
    /// string); `what` describes the accepted forms for messages.
    Text {
        /// What the text may be, e.g. "a mapping preset or a DRAMsim3-style string".
        what: &'static str,
    },
    /// An integer in `min..=max`, or `auto`: a value the run works out from the rest of
    /// the design before it starts (e.g. an address placed after the planned tensors).
    AutoInt {
        /// Smallest valid value.
        min: i64,
        /// Largest valid value.
        max: i64,
    },
    /// A non-empty list of integers, each in `min..=max`.
    IntList {
        /// Smallest valid element.
        min: i64,
        /// Largest valid element.
        max: i64,
    },
}

impl ParamSpec {
    /// An integer parameter in `min..=max` with a default (const, for module specs).
    pub const fn int(
        name: &'static str,
        min: i64,
        max: i64,
        default: i64,
        unit: &'static str,
        doc: &'static str,
    ) -> ParamSpec {
        ParamSpec {
            name,
            ty: ParamType::Int { min, max },
            default: ParamDefault::Int(default),
            unit,
            doc,
        }
    }
}

/// A parameter's default.
#[derive(Debug)]
pub enum ParamDefault {
    /// The parameter must be given.
    Required,
    /// Integer default.
    Int(i64),
    /// Real default.
    Float(f64),
    /// Flag default.
    Bool(bool),
    /// Choice default.
    Str(&'static str),
    /// List default.
    IntList(&'static [i64]),
}

/// One parameter of a module kind.
#[derive(Debug)]
pub struct ParamSpec {
    /// Key in the module's YAML block and in `--set instance.key=value`.
    pub name: &'static str,
    /// Type and range.
    pub ty: ParamType,
    /// Default value.
    pub default: ParamDefault,
    /// Unit (`cycles`, `bytes`, `MHz`, ... or empty).
    pub unit: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// Constructor of a module: from validated parameters and connected ports to an actor.
/// Returns a message (shown at the module's location) for combinations of parameters that
/// are individually valid but jointly not.
pub type BuildFn = fn(&BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String>;

/// A module kind.
pub struct ModuleSpec {
    /// The `kind:` name.
    pub kind: &'static str,
    /// What it models, in one sentence.
    pub summary: &'static str,
    /// Ports.
    pub ports: &'static [PortSpec],
    /// Parameters.
    pub params: &'static [ParamSpec],
    /// Constructor.
    pub build: BuildFn,
    /// For a kind whose clock follows from its parameters (a DRAM's command clock from its
    /// speed bin): that clock, or why the parameters give none. An instance's `clock_mhz`
    /// may then only repeat it.
    pub fixed_clock: Option<FixedClockFn>,
}

/// See [`ModuleSpec::fixed_clock`].
pub type FixedClockFn = fn(&Params) -> Result<Clock, String>;

impl fmt::Debug for ModuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleSpec")
            .field("kind", &self.kind)
            .finish()
    }
}

impl ModuleSpec {
    /// The port called `name`.
    pub fn port(&self, name: &str) -> Option<&'static PortSpec> {
        self.ports.iter().find(|p| p.name == name)
    }
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A parameter value as written in YAML or on the command line.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
        }
    }
}

impl Value {
    /// Checks this value against `ty`, returning it normalised (an integer given for a real
    /// parameter becomes a real) or a message saying what was expected.
    pub fn check(&self, ty: &ParamType) -> Result<Value, String> {
        match (ty, self) {
            (ParamType::AutoInt { .. }, Value::Str(s)) if s == AUTO => Ok(self.clone()),
            (ParamType::AutoInt { min, max }, Value::Int(_)) => Value::check(
                self,
                &ParamType::Int {
                    min: *min,
                    max: *max,
                },
            ),
            (ParamType::Int { min, max }, Value::Int(i)) => {
                if i < min || i > max {
                    Err(format!(
                        "{i} is out of range; expected an integer in {min}..={max}"
                    ))
                } else {
                    Ok(Value::Int(*i))
                }
            }
            (ParamType::Float { min, max }, Value::Int(_) | Value::Float(_)) => {
                let x = match self {
                    Value::Int(i) => *i as f64,
                    Value::Float(x) => *x,
                    _ => unreachable!("matched above"),
                };
                if !x.is_finite() || x < *min || x > *max {
                    Err(format!(
                        "{x} is out of range; expected a number in {min}..={max}"
                    ))
                } else {
                    Ok(Value::Float(x))
                }
            }
            (ParamType::Bool, Value::Bool(b)) => Ok(Value::Bool(*b)),
            (ParamType::Choice(names), Value::Str(s)) => {
                if names.contains(&s.as_str()) {
                    Ok(Value::Str(s.clone()))
                } else {
                    Err(format!("`{s}` is not one of {}", quote_list(names)))
                }
            }
            (ParamType::Text { .. }, Value::Str(s)) if !s.is_empty() => Ok(Value::Str(s.clone())),
            (ParamType::IntList { min, max }, Value::List(items)) => {
                if items.is_empty() {
                    return Err("the list is empty".into());
                }
                for v in items {
                    match v {
                        Value::Int(i) if i >= min && i <= max => {}
                        other => {
                            return Err(format!(
                                "element {other} is not an integer in {min}..={max}"
                            ));
                        }
                    }
                }
                Ok(self.clone())
            }
            (ParamType::IntList { .. }, Value::Int(_)) => Value::List(vec![self.clone()]).check(ty),
            (ty, v) => Err(format!("expected {}, found `{v}`", ty.describe())),
        }
    }
}

impl ParamType {
    /// `an integer in 1..=64`, `true or false`, ...
    pub fn describe(&self) -> String {
        match self {
            ParamType::Int { min, max } => format!("an integer in {min}..={max}"),
            ParamType::AutoInt { min, max } => {
                format!("an integer in {min}..={max}, or `{AUTO}` (worked out by the run)")
            }
            ParamType::Float { min, max } => format!("a number in {min}..={max}"),
            ParamType::Bool => "true or false".into(),
            ParamType::Choice(names) => format!("one of {}", quote_list(names)),
            ParamType::Text { what } => (*what).into(),
            ParamType::IntList { min, max } => format!("a list of integers in {min}..={max}"),
        }
    }
}

impl ParamDefault {
    /// The default as a value, `None` if required.
    pub fn value(&self) -> Option<Value> {
        match self {
            ParamDefault::Required => None,
            ParamDefault::Int(i) => Some(Value::Int(*i)),
            ParamDefault::Float(x) => Some(Value::Float(*x)),
            ParamDefault::Bool(b) => Some(Value::Bool(*b)),
            ParamDefault::Str(s) => Some(Value::Str((*s).into())),
            ParamDefault::IntList(l) => {
                Some(Value::List(l.iter().map(|&i| Value::Int(i)).collect()))
            }
        }
    }
}

/// `` `a`, `b`, `c` ``.
pub fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Validated parameters of one module instance, defaults filled in, in spec order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    values: Vec<(&'static str, Value)>,
}

impl Params {
    /// Builds from validated `(name, value)` pairs.
    pub fn new(values: Vec<(&'static str, Value)>) -> Self {
        Params { values }
    }

    /// All values in spec order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    fn get(&self, name: &str) -> Result<&Value, String> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("parameter `{name}` is missing"))
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        match self.get(name)? {
            Value::Int(i) => Ok(*i),
            v => Err(format!("parameter `{name}` = {v} is not an integer")),
        }
    }

    /// A non-negative integer parameter.
    pub fn u64(&self, name: &str) -> Result<u64, String> {
        let i = self.int(name)?;
        u64::try_from(i).map_err(|_| format!("parameter `{name}` = {i} is negative"))
    }

    /// An integer-or-`auto` parameter ([`ParamType::AutoInt`]): `None` for `auto`.
    pub fn auto_u64(&self, name: &str) -> Result<Option<u64>, String> {
        match self.get(name)? {
            Value::Str(s) if s == AUTO => Ok(None),
            _ => self.u64(name).map(Some),
        }
    }

    /// A real parameter.
    pub fn f64(&self, name: &str) -> Result<f64, String> {
        match self.get(name)? {
            Value::Float(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            v => Err(format!("parameter `{name}` = {v} is not a number")),
        }
    }

    /// A flag parameter.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        match self.get(name)? {
            Value::Bool(b) => Ok(*b),
            v => Err(format!("parameter `{name}` = {v} is not true or false")),
        }
    }

    /// A choice parameter.
    pub fn str(&self, name: &str) -> Result<&str, String> {
        match self.get(name)? {
            Value::Str(s) => Ok(s),
            v => Err(format!("parameter `{name}` = {v} is not a name")),
        }
    }

    /// An integer-list parameter.
    pub fn int_list(&self, name: &str) -> Result<Vec<i64>, String> {
        match self.get(name)? {
            Value::List(items) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Ok(*i),
                    v => Err(format!("parameter `{name}` has a non-integer element {v}")),
                })
                .collect(),
            v => Err(format!("parameter `{name}` = {v} is not a list")),
        }
    }
}

/// What a module constructor gets.
pub struct BuildArgs<'a> {
    /// Instance name.
    pub name: &'a str,
    /// Validated parameters.
    pub params: &'a Params,
    /// The instance's clock domain.
    pub clock: Clock,
    /// Connected ports: `(port name, link)`.
    pub ports: &'a [(&'static str, LinkId)],
    /// For each connected port, the module at the other end: `(port, its kind, its params)`.
    pub peers: &'a [(&'static str, &'static ModuleSpec, &'a Params)],
    /// Two hops away: `(my port, the peer's port, the module at the far end of it, its
    /// params)` for every port of every peer.
    pub peers2: &'a [(&'static str, &'static str, &'static ModuleSpec, &'a Params)],
    /// The workload of the run, if any (the controller needs it).
    pub workload: Option<&'a crate::workload::Workload>,
    /// The data plane of a functional run (`None` in timing-only runs).
    pub functional: Option<&'a crate::functional::Shared>,
}

impl BuildArgs<'_> {
    /// The link connected to a required port.
    pub fn port(&self, name: &str) -> Result<LinkId, String> {
        self.opt_port(name)
            .ok_or_else(|| format!("port `{}.{name}` is not connected", self.name))
    }

    /// Kind and parameters of the module connected to `port`.
    pub fn peer(&self, port: &str) -> Option<(&'static ModuleSpec, &Params)> {
        self.peers
            .iter()
            .find(|(p, _, _)| *p == port)
            .map(|(_, k, params)| (*k, *params))
    }

    /// Kind and parameters of the module connected to port `their` of the module connected
    /// to my `port` (e.g. the accumulator behind the PE array a controller drives).
    pub fn peer_of_peer(&self, port: &str, their: &str) -> Option<(&'static ModuleSpec, &Params)> {
        self.peers2
            .iter()
            .find(|(p, q, _, _)| *p == port && *q == their)
            .map(|(_, _, k, params)| (*k, *params))
    }

    /// The link connected to an optional port, if any.
    pub fn opt_port(&self, name: &str) -> Option<LinkId> {
        self.ports.iter().find(|(p, _)| *p == name).map(|(_, l)| *l)
    }
}
