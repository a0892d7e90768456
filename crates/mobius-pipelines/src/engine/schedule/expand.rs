//! Expanding jobs into instances once their needs are done: the job's `if:` before a computed
//! matrix, the matrix and its filter, each instance's own `if:`, skips decided at once.

use super::*;

/// Expands every job whose needs are all done into instances, deciding skips.
pub(super) fn expand_ready(
    workflow: &Workflow,
    opts: &RunOptions,
    wanted: &BTreeSet<String>,
    expanded: &mut [bool],
    slots: &mut Vec<Slot>,
    observer: &mut dyn RunObserver,
) {
    // Expanding one job may make another expandable (a skip is immediately done), so repeat.
    loop {
        let mut progress = false;
        for (index, job) in workflow.jobs.iter().enumerate() {
            if expanded[index] || !wanted.contains(&job.id) {
                continue;
            }
            let Some(needs) = needs_context(workflow, job, slots, expanded) else { continue };
            expanded[index] = true;
            // What a `name:` with expressions is rendered with (`needs`, `github`, `inputs`…).
            let named = base_context(opts, job, &needs.context, &Combination::new());
            progress = true;
            let condition = job.if_.as_deref().unwrap_or("");
            let calls_status = expr::parse(strip_braces(condition)).is_ok_and(|e| expr::uses_status_function(&e));
            let resolved: Job;
            let job = if is_dynamic(job) {
                // The job's `if:` comes before its matrix, which may read outputs that a skipped
                // or failed need never set; a job skipped this way is one entry, as on GitHub.
                if opts.cancel.is_cancelled() {
                    finish(observer, slots, index, blank_report(&named, job, Combination::new(), Status::Cancelled));
                    continue;
                }
                let ctx = base_context(opts, job, &needs.context, &Combination::new()).with_status(needs.status);
                let verdict =
                    if needs.skipped && !calls_status { Ok(false) } else { expr::evaluate_condition(condition, &ctx) };
                let computed = match verdict {
                    Ok(false) => {
                        finish(observer, slots, index, blank_report(&named, job, Combination::new(), Status::Skipped));
                        continue;
                    }
                    Err(why) => Err(Unstartable::Condition(why)),
                    Ok(true) => match &job.strategy {
                        Some(strategy) => resolve_matrix(strategy, &ctx)
                            .map(|strategy| Job { strategy: Some(strategy), ..job.clone() })
                            .map_err(Unstartable::Matrix),
                        // `is_dynamic` found a matrix, so there is a strategy.
                        None => Ok(job.clone()),
                    },
                };
                match computed {
                    Ok(job) => {
                        resolved = job;
                        &resolved
                    }
                    Err(why) => {
                        let report = blank_report(&named, job, Combination::new(), Status::Failure);
                        explain(observer, &report.name, &Chain(&why).to_string());
                        finish(observer, slots, index, report);
                        continue;
                    }
                }
            } else {
                job
            };
            let combos = match job.strategy.as_ref().map(expand_matrix) {
                None => vec![Combination::new()],
                Some(Ok(combos)) => combos,
                Some(Err(why)) => {
                    let report = blank_report(&named, job, Combination::new(), Status::Failure);
                    explain(observer, &report.name, &format!("cannot expand the matrix: {why}"));
                    finish(observer, slots, index, report);
                    continue;
                }
            };
            // `strategy.job-index` counts every combination, also those a filter leaves out.
            let total = combos.len();
            let combos: Vec<(usize, Combination)> =
                combos.into_iter().enumerate().filter(|(_, c)| matches_filter(c, &opts.matrix_filter)).collect();
            if opts.cancel.is_cancelled() {
                for (_, combo) in combos {
                    finish(observer, slots, index, blank_report(&named, job, combo, Status::Cancelled));
                }
                continue;
            }
            for (job_index, combo) in combos {
                let ctx = base_context(opts, job, &needs.context, &combo).with_status(needs.status);
                let verdict =
                    if needs.skipped && !calls_status { Ok(false) } else { expr::evaluate_condition(condition, &ctx) };
                match verdict {
                    Ok(true) => {
                        let report = blank_report(&named, job, combo, Status::Skipped);
                        observer.job_queued(&report.name);
                        let strategy = strategy_context(job, &report.matrix, job_index, total, &mut |why| {
                            explain(observer, &report.name, why);
                        });
                        slots.push(Slot {
                            job: index,
                            report,
                            called: Vec::new(),
                            state: State::Ready,
                            strategy,
                            admitted: false,
                            route: None,
                        });
                    }
                    Ok(false) => finish(observer, slots, index, blank_report(&named, job, combo, Status::Skipped)),
                    Err(why) => {
                        let report = blank_report(&named, job, combo, Status::Failure);
                        explain(observer, &report.name, &format!("cannot evaluate the job's `if:`: {why}"));
                        finish(observer, slots, index, report);
                    }
                }
            }
        }
        if !progress {
            break;
        }
    }
}

/// Why a job with a computed matrix fails before any of its instances starts.
#[derive(Debug, thiserror::Error)]
enum Unstartable {
    #[error("cannot evaluate the job's `if:`")]
    Condition(#[source] expr::ExprError),
    #[error("cannot compute the matrix")]
    Matrix(#[source] ComputedMatrixError),
}

fn matches_filter(combo: &Combination, filter: &[(String, String)]) -> bool {
    filter.iter().all(|(key, want)| match combo.get(key) {
        None => true,
        Some(v) => &expr::Value::from_json(v).to_display_string() == want,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn matrix_filter_ignores_missing_keys() {
        let combo: Combination = serde_json::from_value(json!({ "os": "linux", "n": 2 })).unwrap_or_default();
        let filter = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(matches_filter(&combo, &filter("os", "linux")));
        assert!(matches_filter(&combo, &filter("n", "2")));
        assert!(!matches_filter(&combo, &filter("os", "mac")));
        assert!(matches_filter(&combo, &filter("other", "x")));
    }
}
