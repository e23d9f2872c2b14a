//! Argument templates: `{name}` placeholders filled only from a whitelist
//! of incident fields; `{{` and `}}` are literal braces. Filling never
//! splits or joins arguments, so one template is always exactly one
//! argument, whatever the field values hold. Values that could be read as
//! options (leading `-`) or hold control characters are refused.

use std::collections::BTreeMap;

use state::model::{FixPlan, PlannedFix};

/// Fields a template may use.
pub const FIELDS: &[&str] = &[
    "incident_id",
    "service",
    "target",
    "fix",
    "cause_id",
    "layer",
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(&'static str),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}}: allowed are {allowed}", allowed = FIELDS.join(", "))]
    UnknownField(String),
    #[error("unclosed placeholder in {0:?}")]
    Unclosed(String),
    #[error("field {field} has a value that is not safe as an argument: {value:?}")]
    UnsafeValue { field: String, value: String },
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed(s.to_string())),
                        }
                    }
                    let field = FIELDS
                        .iter()
                        .find(|f| **f == name)
                        .ok_or(TemplateError::UnknownField(name))?;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(field));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template(parts))
    }

    /// The filled text; refuses unsafe values.
    pub fn fill(&self, fields: &Fields) -> Result<String, TemplateError> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => out.push_str(fields.safe(f)?),
            }
        }
        Ok(out)
    }
}

/// Fill every template into one argument each.
pub fn fill_args(templates: &[String], fields: &Fields) -> Result<Vec<String>, TemplateError> {
    templates
        .iter()
        .map(|t| Template::parse(t)?.fill(fields))
        .collect()
}

/// Fill the string leaves of a JSON body (placeholders stay inside their
/// JSON string, so they cannot change the document's structure).
pub fn fill_json(
    v: &serde_json::Value,
    fields: &Fields,
) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Value::String(Template::parse(s)?.fill_lenient(fields)),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| fill_json(v, fields))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), fill_json(v, fields)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

impl Template {
    /// Fill without the argument-safety rule (JSON strings are data).
    fn fill_lenient(&self, fields: &Fields) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => out.push_str(fields.get(f)),
            }
        }
        out
    }
}

/// The whitelisted incident fields of one planned fix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<&'static str, String>);

impl Fields {
    pub fn of(plan: &FixPlan, step: &PlannedFix) -> Fields {
        let layer = serde_json::to_value(step.layer)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let mut m = BTreeMap::new();
        m.insert("incident_id", plan.incident_id.clone());
        m.insert("service", plan.service.clone());
        m.insert("target", step.target.clone());
        m.insert("fix", step.fix.clone());
        m.insert("cause_id", plan.cause_id.clone().unwrap_or_default());
        m.insert("layer", layer);
        Fields(m)
    }

    /// Set one field (tests; only whitelisted names).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Fields {
        if let Some(f) = FIELDS.iter().find(|f| **f == name) {
            self.0.insert(f, value.into());
        }
        self
    }

    fn get(&self, f: &str) -> &str {
        self.0.get(f).map(String::as_str).unwrap_or("")
    }

    fn safe(&self, f: &str) -> Result<&str, TemplateError> {
        let v = self.get(f);
        if v.starts_with('-') || v.chars().any(|c| c.is_control()) {
            return Err(TemplateError::UnsafeValue {
                field: f.to_string(),
                value: v.to_string(),
            });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placeholders_fill_inside_one_argument() {
        let f = Fields::default()
            .with("service", "api")
            .with("target", "api-1");
        let args = fill_args(
            &[
                "restart".into(),
                "{target}".into(),
                "--unit={service}.service".into(),
                "{{x}}".into(),
            ],
            &f,
        )
        .unwrap();
        assert_eq!(args, vec!["restart", "api-1", "--unit=api.service", "{x}"]);
        assert!(matches!(
            Template::parse("{secret}"),
            Err(TemplateError::UnknownField(_))
        ));
        assert!(matches!(
            Template::parse("{target"),
            Err(TemplateError::Unclosed(_))
        ));
        let evil = Fields::default().with("target", "--force");
        assert!(matches!(
            fill_args(&["{target}".into()], &evil),
            Err(TemplateError::UnsafeValue { .. })
        ));
    }

    #[test]
    fn json_bodies_keep_their_shape() {
        let f = Fields::default().with("service", "a\", \"admin\": true, \"x\": \"");
        let body = serde_json::json!({"text": "down: {service}", "n": 1});
        let out = fill_json(&body, &f).unwrap();
        assert_eq!(out.as_object().unwrap().len(), 2);
        assert!(out["text"].as_str().unwrap().contains("admin"));
    }

    proptest! {
        /// Whatever the field values, the argument vector has exactly the
        /// template's length, and a placeholder-only argument is exactly
        /// the value: nothing can add, split or merge arguments.
        #[test]
        fn hostile_values_cannot_add_arguments(
            target in "\\PC*",
            service in prop::sample::select(vec![
                "a b c".to_string(), "x; rm -rf /".to_string(), "$(reboot)".to_string(),
                "`id`".to_string(), "a\nb".to_string(), "' \" \\".to_string(), "{target}".to_string(),
                "--help".to_string(), "".to_string(), "a\0b".to_string(),
            ]),
            extra in "[ -~]{0,20}",
        ) {
            let f = Fields::default().with("target", target.clone()).with("service", service.clone()).with("fix", extra);
            let templates: Vec<String> = vec!["restart".into(), "{target}".into(), "svc={service}".into(), "{fix}".into()];
            match fill_args(&templates, &f) {
                Ok(args) => {
                    prop_assert_eq!(args.len(), templates.len());
                    prop_assert_eq!(&args[0], "restart");
                    prop_assert_eq!(&args[1], &target);
                    prop_assert_eq!(args[2].clone(), format!("svc={service}"));
                }
                Err(TemplateError::UnsafeValue { value, .. }) => {
                    prop_assert!(value.starts_with('-') || value.chars().any(|c| c.is_control()));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
