//! Agents and the listing fields of models (tier, prices, features,
//! description), read from a file operators edit.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The listing shipped in the binary, used when no file is configured.
const BUILT_IN_CATALOG: &str = include_str!("../../config/catalog.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    S,
    M,
    H,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub monthly: f64,
    pub annual: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: String,
    pub tier: Vec<Tier>,
    pub subscription: Subscription,
    pub features: Vec<String>,
}

/// Which catalog list a model appears in; each model is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    Models,
    EnhancedModels,
}

/// The listing fields of a model; `id` is the name the registry serves it under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelListing {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: String,
    pub tier: Vec<Tier>,
    pub subscription: Subscription,
    pub features: Vec<String>,
    pub listing: Listing,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub models: Vec<ModelListing>,
}

#[derive(Debug, thiserror::Error)]
#[error("catalog {source_name}: {reason}")]
pub struct CatalogError {
    source_name: String,
    reason: String,
}

impl Catalog {
    /// Reads `path`, or the built-in listing when `path` is empty or absent.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        if path.as_os_str().is_empty() || !path.exists() {
            return Self::parse(BUILT_IN_CATALOG, "(built-in)");
        }
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Self, CatalogError> {
        let err = |reason: String| CatalogError {
            source_name: source_name.to_string(),
            reason,
        };
        let catalog: Catalog = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut ids = HashSet::new();
        let all_ids = catalog
            .agents
            .iter()
            .map(|a| ("agent", &a.id, &a.subscription))
            .chain(
                catalog
                    .models
                    .iter()
                    .map(|m| ("model", &m.id, &m.subscription)),
            );
        for (kind, id, price) in all_ids {
            if id.trim().is_empty() {
                return Err(err(format!("a {kind} has an empty id")));
            }
            if !ids.insert((kind, id.clone())) {
                return Err(err(format!("{kind} id {id:?} is listed twice")));
            }
            if !(price.monthly >= 0.0 && price.annual >= 0.0) {
                return Err(err(format!(
                    "{kind} {id:?} has a negative or missing price"
                )));
            }
        }
        Ok(catalog)
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    pub fn model(&self, id: &str) -> Option<&ModelListing> {
        self.models.iter().find(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses_and_lists_the_legacy_models() {
        let c = Catalog::load(Path::new("")).unwrap();
        assert!(!c.agents.is_empty());
        for id in [
            "lstm_predictor",
            "transformer_predictor",
            "adaptive_ensemble",
            "realtime_portfolio_optimizer",
        ] {
            assert!(c.model(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn duplicate_ids_and_unknown_fields_are_refused() {
        let agent = r#"[[agents]]
id = "a"
name = "A"
category = "c"
description = "d"
tier = ["S"]
subscription = { monthly = 1.0, annual = 10.0 }
features = []
"#;
        assert!(Catalog::parse(agent, "t").is_ok());
        let twice = format!("{agent}{agent}");
        assert!(Catalog::parse(&twice, "t")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let extra = agent.replace("features = []", "features = []\nprise = 3");
        assert!(Catalog::parse(&extra, "t").is_err());
        let bad_tier = agent.replace("[\"S\"]", "[\"XL\"]");
        assert!(Catalog::parse(&bad_tier, "t").is_err());
    }
}
