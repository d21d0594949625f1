//! `--set KEY=VALUE` overrides, applied to a parsed [`Document`] before validation, so an
//! overridden value goes through exactly the checks a value in the file does.
//!
//! Keys: `clock_mhz`, `name`, or `INSTANCE.PARAM` (including `INSTANCE.clock_mhz`).
//! Values are read as YAML scalars or flow lists: `32`, `1.5`, `true`, `ddr4-3200`, `[4, 8]`.

use super::error::{InputError, Origin, suggestion};
use super::raw::{Document, Located};
use crate::component::Value;

/// One `--set` argument.
#[derive(Clone, Debug, PartialEq)]
pub struct SetOverride {
    /// Dotted key split at the dots.
    pub path: Vec<String>,
    /// Parsed value.
    pub value: Value,
    /// The argument as given, for error messages.
    pub arg: String,
}

impl SetOverride {
    /// Parses `KEY=VALUE`.
    pub fn parse(arg: &str) -> Result<SetOverride, InputError> {
        let origin = Origin::CommandLine(format!("--set {arg}"));
        let Some((key, raw_value)) = arg.split_once('=') else {
            return Err(InputError::new("`--set` expects KEY=VALUE", origin, arg)
                .with_hint("for example `--set pe_array.rows=32`"));
        };
        let path: Vec<String> = key.trim().split('.').map(|s| s.trim().to_owned()).collect();
        if path.iter().any(String::is_empty) {
            return Err(
                InputError::new(format!("malformed key `{key}`"), origin, key)
                    .with_hint("keys are `clock_mhz` or `INSTANCE.PARAM`, e.g. `pe_array.rows`"),
            );
        }
        if raw_value.trim().is_empty() {
            return Err(InputError::new(
                format!("no value given for `{key}`"),
                origin,
                key,
            ));
        }
        let value: Value = serde_saphyr::from_str(raw_value).map_err(|e| {
            InputError::new(
                format!("cannot read value `{raw_value}`: {}", e.without_snippet()),
                origin.clone(),
                key,
            )
        })?;
        Ok(SetOverride {
            path,
            value,
            arg: arg.to_owned(),
        })
    }

    fn origin(&self) -> Origin {
        Origin::CommandLine(format!("--set {}", self.arg))
    }

    fn key(&self) -> String {
        self.path.join(".")
    }
}

/// Applies overrides in order (a later one wins).
pub fn apply(doc: &mut Document, sets: &[SetOverride]) -> Result<(), InputError> {
    for s in sets {
        let origin = s.origin();
        match s.path.as_slice() {
            [k] if k == "clock_mhz" => {
                let mhz = match s.value {
                    Value::Int(i) => i as f64,
                    Value::Float(x) => x,
                    ref v => {
                        return Err(InputError::new(
                            format!("`clock_mhz` must be a number, found `{v}`"),
                            origin,
                            s.key(),
                        ));
                    }
                };
                doc.clock_mhz = Located { value: mhz, origin };
            }
            [k] if k == "name" => {
                doc.name = Some(Located {
                    value: s.value.to_string(),
                    origin,
                });
            }
            [e, key] if e == "energy" => {
                let v = match s.value {
                    Value::Int(i) => i as f64,
                    Value::Float(x) => x,
                    ref v => {
                        return Err(InputError::new(
                            format!("`energy.{key}` must be a number, found `{v}`"),
                            origin,
                            s.key(),
                        ));
                    }
                };
                let value = Located {
                    value: v,
                    origin: origin.clone(),
                };
                match doc.energy.iter_mut().find(|(k, _)| &k.value == key) {
                    Some((_, old)) => *old = value,
                    None => doc.energy.push((
                        Located {
                            value: key.clone(),
                            origin,
                        },
                        value,
                    )),
                }
            }
            [inst, param] => {
                let Some(module) = doc.modules.iter_mut().find(|m| &m.name.value == inst) else {
                    let names: Vec<&str> =
                        doc.modules.iter().map(|m| m.name.value.as_str()).collect();
                    return Err(InputError::new(
                        format!("`--set` names an unknown module `{inst}`"),
                        origin,
                        s.key(),
                    )
                    .with_hint(suggestion(inst, &names, "modules")));
                };
                let value = Located {
                    value: s.value.clone(),
                    origin: origin.clone(),
                };
                match module.entries.iter_mut().find(|(k, _)| &k.value == param) {
                    Some((_, v)) => *v = value,
                    None => module.entries.push((
                        Located {
                            value: param.clone(),
                            origin,
                        },
                        value,
                    )),
                }
            }
            _ => {
                return Err(InputError::new(
                    format!("unknown key `{}`", s.key()),
                    origin,
                    s.key(),
                )
                .with_hint("keys are `clock_mhz`, `name` or `INSTANCE.PARAM`, e.g. `pe_array.rows`"));
            }
        }
    }
    Ok(())
}
