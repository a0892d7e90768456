//! A run's jobs as the graph its workflow declares: each job with the jobs it `needs`, laid
//! out in stages (a job's stage is one past the latest of its needs), and each recorded job
//! instance matched to the job it is an instance of. What a run page draws; the runner
//! reads the workflow at the run's commit ([`crate::runner::Runner::workflow_graph`]).

use mobius_pipelines::workflow::Workflow;

/// One job of the workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNode {
    /// Its key under `jobs`.
    pub id: String,
    /// What its instances are called: `name:` when it has no expression, else the id.
    pub label: String,
    /// The ids of the jobs it needs.
    pub needs: Vec<String>,
    /// Its stage: 0 for a job that needs nothing, else one past the latest of its needs.
    pub stage: usize,
}

/// The jobs of `workflow`, in file order, each with its stage.
pub fn nodes(workflow: &Workflow) -> Vec<JobNode> {
    let mut nodes: Vec<JobNode> = workflow
        .jobs
        .iter()
        .map(|job| JobNode {
            id: job.id.clone(),
            label: job.name.clone().filter(|n| !n.contains("${{")).unwrap_or_else(|| job.id.clone()),
            needs: job.needs.iter().map(|(need, _)| need.clone()).collect(),
            stage: 0,
        })
        .collect();
    // Longest path from a root. A parsed workflow has no cycle (lint refuses one), but the
    // passes are bounded anyway: a cycle only leaves stages unfinished, never loops.
    for _ in 0..nodes.len() {
        let mut changed = false;
        for i in 0..nodes.len() {
            let stage = nodes[i]
                .needs
                .iter()
                .filter_map(|need| nodes.iter().find(|n| &n.id == need))
                .map(|n| n.stage + 1)
                .max()
                .unwrap_or(0);
            if stage != nodes[i].stage {
                nodes[i].stage = stage;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    nodes
}

/// Which of `nodes` the job instance `name` belongs to: the label itself, a matrix instance
/// (`build (linux, 20)`), or a job of a called workflow (`deploy / migrate`). `None` for a
/// name rendered from an expression, which no label predicts.
pub fn node_of(nodes: &[JobNode], name: &str) -> Option<usize> {
    nodes.iter().position(|node| {
        name == node.label
            || name
                .strip_prefix(node.label.as_str())
                .is_some_and(|rest| rest.starts_with(" (") || rest.starts_with(" / "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_needs_and_instances_find_their_job() {
        let text = "on: push\njobs:\n  lint:\n    runs-on: x\n    steps: [{run: 'true'}]\n  build:\n    name: Build\n    runs-on: x\n    strategy: {matrix: {os: [linux, mac]}}\n    steps: [{run: 'true'}]\n  test:\n    needs: [build]\n    runs-on: x\n    steps: [{run: 'true'}]\n  ship:\n    name: ship ${{ github.ref }}\n    needs: [test, lint]\n    runs-on: x\n    steps: [{run: 'true'}]\n";
        let workflow = mobius_pipelines::workflow::parse("ci.yml", text).unwrap();
        let nodes = nodes(&workflow);
        let stages: Vec<(&str, &str, usize)> =
            nodes.iter().map(|n| (n.id.as_str(), n.label.as_str(), n.stage)).collect();
        assert_eq!(stages, [("lint", "lint", 0), ("build", "Build", 0), ("test", "test", 1), ("ship", "ship", 2)]);
        assert_eq!(nodes[3].needs, ["test", "lint"]);
        assert_eq!(node_of(&nodes, "Build (linux)"), Some(1));
        assert_eq!(node_of(&nodes, "test"), Some(2));
        assert_eq!(node_of(&nodes, "test / unit"), Some(2));
        assert_eq!(node_of(&nodes, "testing"), None);
        assert_eq!(node_of(&nodes, "ship refs/heads/main"), None, "an expression's name is not predicted");
    }
}
