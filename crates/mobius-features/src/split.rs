//! A flag's share of traffic as a rollout moves it: the flag's `targeting` set to flagd's
//! `fractional` between the rolled-out variant and the flag's default variant, in the stored
//! text like any edit, so every step is a version of the set and a `mobius-flag.changed` event
//! whose reason names the rollout.
//!
//! A rollout owns the flag's targeting while it runs: targeting written by hand would be lost
//! by the first step, so a flag whose targeting is anything but such a split is refused
//! ([`FlagError::TargetingInUse`]).

use serde_json::{Value, json};

use super::{Actor, FlagError, FlagSets, Outcome, Proposal, edit, names, validate};
use crate::gate::Gating;
use mobius_events::emit::flags::Action;

/// The whole of a split: weights are percentages.
pub const WHOLE: u32 = 100;

impl FlagSets {
    /// Sends `weight`% of the flag's evaluations to `variant` and the rest to the flag's default
    /// variant; no change when the split is that already. Refused when the flag has no default
    /// variant, `variant` is not one of its variants or is the default, `weight` is over 100,
    /// or the flag's targeting is something a rollout did not write. Asks the gate policies as
    /// any change does (the rollouts ask for their steps themselves: [`Gating`]).
    pub async fn set_split(
        &self,
        set: &str,
        flag: &str,
        variant: &str,
        weight: u32,
        actor: Actor,
    ) -> Result<Outcome, FlagError> {
        self.split_as(set, flag, variant, weight, actor, Gating::ask()).await
    }

    /// [`FlagSets::set_split`], meeting the gate policies as `gating` says.
    pub(crate) async fn split_as(
        &self,
        set: &str,
        flag: &str,
        variant: &str,
        weight: u32,
        actor: Actor,
        gating: Gating,
    ) -> Result<Outcome, FlagError> {
        names::check_set(set)?;
        if weight > WHOLE {
            return Err(FlagError::BadWeight { weight });
        }
        let (name, key, variant) = (set.to_owned(), flag.to_owned(), variant.to_owned());
        self.change(set, None, actor, gating, move |stored| {
            let stored = stored.ok_or_else(|| FlagError::NoSet { set: name.clone() })?;
            let document = stored.document.as_deref().unwrap_or_default();
            let current = validate(&name, document)?;
            let default = split_of(&current, &name, &key, &variant)?;
            let wanted = targeting(&variant, &default, weight);
            let now = targeting_in(document, &key);
            if now.as_ref() == Some(&wanted) {
                return Ok(None);
            }
            if let Some(now) = now.filter(|t| !is_split(t, &variant, &default)) {
                return Err(FlagError::TargetingInUse {
                    set: name.clone(),
                    flag: key.clone(),
                    targeting: now.to_string(),
                });
            }
            let edited = edit::set_field(document, &key, "targeting", &wanted.to_string())
                .map_err(|_| FlagError::NoFlag { set: name.clone(), flag: key.clone() })?;
            let parsed = validate(&name, &edited)?;
            Ok(Some(Proposal {
                document: Some(edited),
                set: Some(parsed),
                environment: stored.environment.clone(),
                action: Action::Split,
                flag: Some(key.clone()),
            }))
        })
        .await
    }
}

/// The flag's default variant, when `variant` can be split against it.
pub(crate) fn split_of(
    current: &mobius_flags::FlagSet,
    set: &str,
    flag: &str,
    variant: &str,
) -> Result<String, FlagError> {
    let Some(found) = current.get(flag) else {
        return Err(FlagError::NoFlag { set: set.to_owned(), flag: flag.to_owned() });
    };
    if found.variant(variant).is_none() {
        let known: Vec<&str> = found.variants().map(|(n, _)| n).collect();
        return Err(FlagError::NoVariant {
            set: set.to_owned(),
            flag: flag.to_owned(),
            variant: variant.to_owned(),
            known: known.join(", "),
        });
    }
    match found.default_variant() {
        None => Err(FlagError::NoDefault { set: set.to_owned(), flag: flag.to_owned() }),
        Some(default) if default == variant => {
            Err(FlagError::VariantIsDefault { set: set.to_owned(), flag: flag.to_owned(), variant: variant.to_owned() })
        }
        Some(default) => Ok(default.to_owned()),
    }
}

/// The targeting of a split: `weight` to `variant`, the rest to `default`.
pub(crate) fn targeting(variant: &str, default: &str, weight: u32) -> Value {
    json!({ "fractional": [[variant, weight], [default, WHOLE - weight]] })
}

/// Whether `targeting` is a split between these two variants, at any weights.
pub(crate) fn is_split(targeting: &Value, variant: &str, default: &str) -> bool {
    let Some(parts) = targeting.get("fractional").and_then(Value::as_array) else { return false };
    let names: Vec<Option<&str>> = parts.iter().map(|p| p.get(0).and_then(Value::as_str)).collect();
    targeting.as_object().is_some_and(|o| o.len() == 1) && names == [Some(variant), Some(default)]
}

/// The weight a split gives `variant` (0 when the flag has no split).
pub fn weight_in(targeting: Option<&Value>, variant: &str) -> u32 {
    let parts = targeting.and_then(|t| t.get("fractional")).and_then(Value::as_array);
    parts
        .into_iter()
        .flatten()
        .find(|p| p.get(0).and_then(Value::as_str) == Some(variant))
        .and_then(|p| p.get(1).and_then(Value::as_u64))
        .map_or(0, |w| w.min(u64::from(WHOLE)) as u32)
}

/// The flag's `targeting` in a stored document, if it has one (`{}` counts as none, as flagd
/// reads it).
pub(crate) fn targeting_in(document: &str, flag: &str) -> Option<Value> {
    let parsed: Value = serde_json::from_str(document).ok()?;
    let targeting = parsed.get("flags")?.get(flag)?.get("targeting")?;
    Some(targeting.clone()).filter(|t| t.as_object().is_none_or(|o| !o.is_empty()))
}
