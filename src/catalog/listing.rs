//! Agents and the listing fields of models (tier, prices, features,
//! description), read from a file operators edit.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::evaluation::{evaluation, Evaluation};
use crate::models::evaluation::Measurements;
use crate::models::ModelInfo;

/// The listing shipped in the binary, used when no file is configured.
const BUILT_IN_CATALOG: &str = include_str!("../../config/catalog.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Tier {
    S,
    M,
    H,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub monthly: f64,
    pub annual: f64,
}

/// An agent or a model as the catalog lists it; a model's `id` is the
/// name the registry serves it under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: String,
    pub tier: Vec<Tier>,
    pub subscription: Subscription,
    pub features: Vec<String>,
    /// Models only: the list the model appears in (checked on load).
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub listing: Option<Listing>,
}

pub type Agent = Entry;
pub type ModelListing = Entry;

/// Which catalog list a model appears in; each model is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    Models,
    EnhancedModels,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub models: Vec<ModelListing>,
    /// What `tickcast evaluate` measured, behind the models' evaluations.
    #[serde(skip)]
    pub measurements: Option<Measurements>,
}

/// A served model as the catalog lists it, with its measured evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CatalogModel {
    #[serde(flatten)]
    pub entry: Entry,
    pub complexity: String,
    pub latency: String,
    pub evaluation: Evaluation,
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
        if let Some(a) = catalog.agents.iter().find(|a| a.listing.is_some()) {
            return Err(err(format!(
                "agent {:?} has a listing; only models do",
                a.id
            )));
        }
        if let Some(m) = catalog.models.iter().find(|m| m.listing.is_none()) {
            return Err(err(format!(
                "model {:?} needs listing = \"models\" or \"enhanced_models\"",
                m.id
            )));
        }
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

    pub fn with_measurements(mut self, measurements: Option<Measurements>) -> Self {
        self.measurements = measurements;
        self
    }

    /// The served models in `listing`, each merged with its catalog entry.
    /// A served model without an entry is listed under `enhanced_models`
    /// from its own description, so the two lists never share an id.
    pub fn served<'a>(
        &self,
        served: impl Iterator<Item = &'a ModelInfo>,
        listing: Listing,
    ) -> Vec<CatalogModel> {
        served
            .filter_map(|info| {
                let entry = self.model(info.name).cloned().unwrap_or_else(|| Entry {
                    id: info.name.to_string(),
                    name: info.name.to_string(),
                    category: info.category.to_string(),
                    description: info.description.to_string(),
                    tier: Vec::new(),
                    subscription: Subscription {
                        monthly: 0.0,
                        annual: 0.0,
                    },
                    features: Vec::new(),
                    listing: Some(Listing::EnhancedModels),
                });
                if entry.listing != Some(listing) {
                    return None;
                }
                Some(CatalogModel {
                    entry,
                    complexity: info.complexity.to_string(),
                    latency: info.latency.to_string(),
                    evaluation: evaluation(info.name, self.measurements.as_ref()),
                })
            })
            .collect()
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
