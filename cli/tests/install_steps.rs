//! docs/install.md and e2e/kind-e2e.sh run the same install steps, in the same order: every command block
//! marked `<!-- install-step: NAME -->` in the doc equals, line for line (indentation aside), the script's
//! lines between `# install-step: NAME` and `# end-install-step`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

type Steps = Vec<(String, Vec<String>)>;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn normalised(line: &str) -> Option<String> {
    let line = line.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The marked ```sh blocks of a Markdown document, in order.
fn doc_steps(markdown: &str) -> Result<Steps, String> {
    let mut steps = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- install-step:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        match lines.next() {
            Some((_, fence)) if fence.trim() == "```sh" => {}
            _ => {
                return Err(format!(
                    "line {}: install-step {name} is not followed by ```sh",
                    number + 1
                ));
            }
        }
        let mut body = Vec::new();
        loop {
            match lines.next() {
                Some((_, l)) if l.trim() == "```" => break,
                Some((_, l)) => body.extend(normalised(l)),
                None => return Err(format!("install-step {name}: code block never closed")),
            }
        }
        steps.push((name.trim().to_string(), body));
    }
    Ok(steps)
}

/// The marked regions of a shell script, in order.
fn script_steps(script: &str) -> Result<Steps, String> {
    let mut steps = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for (number, line) in script.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("# install-step:") {
            if let Some((open, _)) = &current {
                return Err(format!(
                    "line {}: step {open} not ended before {name}",
                    number + 1
                ));
            }
            current = Some((name.trim().to_string(), Vec::new()));
        } else if trimmed == "# end-install-step" {
            steps.push(
                current
                    .take()
                    .ok_or(format!("line {}: end without a step", number + 1))?,
            );
        } else if let Some((_, body)) = &mut current {
            body.extend(normalised(line));
        }
    }
    match current {
        Some((name, _)) => Err(format!("step {name} never ended")),
        None => Ok(steps),
    }
}

/// Ok when both list the same steps with the same commands; otherwise what differs first.
fn compare(doc: &Steps, script: &Steps) -> Result<(), String> {
    let names = |s: &Steps| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(doc) != names(script) {
        return Err(format!(
            "steps differ: doc {:?}, script {:?}",
            names(doc),
            names(script)
        ));
    }
    for ((name, doc_lines), (_, script_lines)) in doc.iter().zip(script) {
        if doc_lines != script_lines {
            return Err(format!(
                "step {name}: doc runs\n  {}\nbut the script runs\n  {}",
                doc_lines.join("\n  "),
                script_lines.join("\n  ")
            ));
        }
    }
    Ok(())
}

#[test]
fn the_e2e_runs_the_documented_install_steps_in_order() {
    let doc = doc_steps(&read("docs/install.md")).unwrap();
    let script = script_steps(&read("e2e/kind-e2e.sh")).unwrap();
    let names: Vec<&str> = doc.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "crd",
            "muster-exchange",
            "namespace",
            "secrets",
            "mcpserver",
            "app"
        ]
    );
    assert!(doc.iter().all(|(_, lines)| !lines.is_empty()));
    if let Err(difference) = compare(&doc, &script) {
        panic!("docs/install.md and e2e/kind-e2e.sh disagree: {difference}");
    }
}

#[test]
fn the_app_step_ends_with_the_pod_ready_and_the_conditions_shown() {
    let doc = doc_steps(&read("docs/install.md")).unwrap();
    let app = &doc.last().unwrap().1;
    assert!(app.iter().any(|l| l.contains("--for=condition=Ready")));
    assert!(
        app.iter()
            .any(|l| l.contains("--for=condition=TokenExchangeReady"))
    );
    assert!(app.last().unwrap().starts_with("kubectl -n muster get mcps"));
}

#[test]
fn a_changed_command_a_missing_step_or_another_order_is_reported() {
    let doc = doc_steps("<!-- install-step: a -->\n```sh\nkubectl apply -f x\n```\n<!-- install-step: b -->\n```sh\ntrue\n```\n").unwrap();
    let same = script_steps("f() {\n  # install-step: a\n  kubectl apply -f x\n  # end-install-step\n}\n# install-step: b\ntrue\n# end-install-step\n").unwrap();
    assert_eq!(compare(&doc, &same), Ok(()));

    let changed = script_steps("# install-step: a\nkubectl apply -f y\n# end-install-step\n# install-step: b\ntrue\n# end-install-step\n").unwrap();
    assert!(compare(&doc, &changed).unwrap_err().starts_with("step a: "));
    let swapped = script_steps("# install-step: b\ntrue\n# end-install-step\n# install-step: a\nkubectl apply -f x\n# end-install-step\n").unwrap();
    assert!(compare(&doc, &swapped).unwrap_err().starts_with("steps differ"));
    let missing = script_steps("# install-step: a\nkubectl apply -f x\n# end-install-step\n").unwrap();
    assert!(compare(&doc, &missing).is_err());

    assert!(
        script_steps("# install-step: a\ntrue\n").is_err(),
        "an unended step"
    );
    assert!(
        doc_steps("<!-- install-step: a -->\ntext\n").is_err(),
        "a marker without a block"
    );
}
