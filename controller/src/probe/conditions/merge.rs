//! Pure: merging new conditions into observed ones so `lastTransitionTime` only moves when the status
//! flips, and deciding whether anything changed at all (no change, no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The conditions to write: each new one keeps the observed `lastTransitionTime` when its status did
/// not change.
pub(crate) fn merge(observed: &[Condition], new: Vec<Condition>) -> Vec<Condition> {
    new.into_iter()
        .map(|mut condition| {
            if let Some(old) = observed.iter().find(|o| o.type_ == condition.type_)
                && old.status == condition.status
            {
                condition.last_transition_time = old.last_transition_time.clone();
            }
            condition
        })
        .collect()
}

/// True when writing `merged` would change nothing among our condition types.
pub(crate) fn unchanged(observed: &[Condition], merged: &[Condition]) -> bool {
    merged.iter().all(|m| observed.iter().any(|o| o == m))
}

/// The types whose status flipped (or that are new), with the old status (`None` when new).
pub(crate) fn transitions<'a>(
    observed: &'a [Condition],
    merged: &'a [Condition],
) -> Vec<(&'a Condition, Option<&'a str>)> {
    merged
        .iter()
        .filter_map(|m| match observed.iter().find(|o| o.type_ == m.type_) {
            Some(o) if o.status == m.status => None,
            Some(o) => Some((m, Some(o.status.as_str()))),
            None => Some((m, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn cond(type_: &str, status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::from_second(at).unwrap()),
        }
    }

    #[test]
    fn keeps_transition_time_when_status_did_not_flip() {
        let observed = vec![
            cond("Connected", "True", "DexAnswered", 100),
            cond("Ready", "True", "A", 100),
        ];
        let merged = merge(
            &observed,
            vec![
                cond("Connected", "True", "DexAnswered", 200),
                cond("Ready", "False", "B", 200),
            ],
        );
        assert_eq!(merged[0].last_transition_time, observed[0].last_transition_time);
        assert_eq!(
            merged[1].last_transition_time,
            Time(Timestamp::from_second(200).unwrap())
        );
        assert!(!unchanged(&observed, &merged));
        let flips: Vec<_> = transitions(&observed, &merged)
            .iter()
            .map(|(c, old)| (c.type_.clone(), *old))
            .collect();
        assert_eq!(flips, [("Ready".to_string(), Some("True"))]);
    }

    #[test]
    fn identical_conditions_mean_no_write() {
        let observed = vec![cond("Connected", "True", "DexAnswered", 100)];
        let merged = merge(&observed, vec![cond("Connected", "True", "DexAnswered", 300)]);
        assert!(unchanged(&observed, &merged));
        assert!(transitions(&observed, &merged).is_empty());
    }

    #[test]
    fn a_new_generation_or_message_is_a_change_without_a_transition() {
        let observed = vec![cond("Connected", "False", "Disconnected", 100)];
        let mut next = cond("Connected", "False", "Disconnected", 300);
        next.message = "other cause".into();
        let merged = merge(&observed, vec![next]);
        assert!(!unchanged(&observed, &merged));
        assert!(transitions(&observed, &merged).is_empty());
    }
}
