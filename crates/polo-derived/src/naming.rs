//! The one name a place or stay is shown with, decided once here so the
//! day view, the trips, the places list and a share all agree, and so a
//! place is never "Unnamed" while anything about it is known.
//!
//! The best available, in order: the user's name for the place (or, for an
//! imported visit, the source's: "Stanford University"); its street address
//! (the online geocoder's answer, or the source's); "Near <town>" from the
//! offline geocoder; the region; the country. Only a place the offline
//! geocoder knows nothing about (the open sea) has no name.

use crate::rows::Locality;

/// The best name for a place from what is known about it; see the module
/// documentation. Blank strings count as unknown.
#[must_use]
pub fn best_name(name: Option<&str>, address: Option<&str>, locality: Option<&Locality>) -> Option<String> {
    fn known(text: Option<&str>) -> Option<&str> {
        text.map(str::trim).filter(|t| !t.is_empty())
    }
    if let Some(text) = known(name).or_else(|| known(address)) {
        return Some(text.to_owned());
    }
    let locality = locality?;
    if let Some(town) = known(locality.town.as_deref()) {
        return Some(format!("Near {town}"));
    }
    known(locality.region.as_deref()).or_else(|| known(locality.country.as_deref())).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ismaning() -> Locality {
        Locality {
            country_code: Some("DE".into()),
            country: Some("Germany".into()),
            region: Some("Bavaria".into()),
            town: Some("Ismaning".into()),
        }
    }

    #[test]
    fn the_best_known_name_wins() {
        let here = ismaning();
        assert_eq!(best_name(Some("Home"), Some("Hauptstraße 3, Ismaning"), Some(&here)).as_deref(), Some("Home"));
        assert_eq!(
            best_name(None, Some("Hauptstraße 3, Ismaning"), Some(&here)).as_deref(),
            Some("Hauptstraße 3, Ismaning")
        );
        assert_eq!(best_name(Some("  "), None, Some(&here)).as_deref(), Some("Near Ismaning"));
        let rural = Locality { town: None, ..here.clone() };
        assert_eq!(best_name(None, None, Some(&rural)).as_deref(), Some("Bavaria"));
        let country_only = Locality { town: None, region: None, ..here };
        assert_eq!(best_name(None, None, Some(&country_only)).as_deref(), Some("Germany"));
        assert_eq!(best_name(None, None, Some(&Locality::default())), None);
        assert_eq!(best_name(None, None, None), None);
    }
}
