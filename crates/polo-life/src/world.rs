//! The places of the life: two homes and two workplaces in Berlin, the
//! errands around each home (visited again and again, Zipf-weighted), towns
//! for weekend trips, holiday destinations in other time zones and the
//! airports between them.
//!
//! Real coordinates are used where they matter for ground truth (airports,
//! Taveuni's sights on both sides of the 180° meridian); the errands are
//! scattered around home from the seed. Names, addresses and Google-style
//! place ids are made up but stable for a seed.

use crate::geo::offset_m;
use crate::rng::Rng;
use crate::zones::Zone;

/// Index into [`World::places`].
pub type PlaceId = usize;

/// What a place is to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// Where the user lives.
    Home,
    /// Where the user works.
    Work,
    /// Shops, restaurants, friends, the gym...
    Errand,
    /// Hotel or sight of a weekend trip or holiday.
    Away,
    /// An airport.
    Airport,
}

/// One place.
#[derive(Debug, Clone)]
pub struct Place {
    /// Display name ("Bäckerei Schulz", "Tokyo Haneda Airport").
    pub name: String,
    /// Postal address.
    pub address: String,
    /// A Google-style place id (`ChIJ…`).
    pub place_id: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Its time zone.
    pub zone: Zone,
    /// Its role.
    pub kind: PlaceKind,
    /// IATA code of an airport.
    pub iata: Option<&'static str>,
}

impl Place {
    /// `(lat, lon)`.
    #[must_use]
    pub fn pos(&self) -> (f64, f64) {
        (self.lat, self.lon)
    }
}

/// A weekend-trip town: its hotel first, then things to do.
#[derive(Debug, Clone)]
pub struct Town {
    /// The town's name.
    pub name: &'static str,
    /// Hotel first.
    pub spots: Vec<PlaceId>,
}

/// A holiday destination and the airports on the way there and back.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The destination's name ("Tokyo").
    pub name: &'static str,
    /// Its zone.
    pub zone: Zone,
    /// Airports after the home airport, in order, on the way out.
    pub out: Vec<PlaceId>,
    /// Airports before the home airport, in order, on the way back.
    pub back: Vec<PlaceId>,
    /// Where the user sleeps.
    pub hotel: PlaceId,
    /// What the user visits.
    pub sights: Vec<PlaceId>,
    /// Only visited June–September (Fiji: no summer time then).
    pub summer_only: bool,
}

/// All places.
#[derive(Debug, Clone)]
pub struct World {
    /// Every place; [`PlaceId`] indexes it.
    pub places: Vec<Place>,
    /// First and second home (the user moves once).
    pub homes: [PlaceId; 2],
    /// First and second job.
    pub works: [PlaceId; 2],
    /// Errands around each home, favourites first.
    pub errands: [Vec<PlaceId>; 2],
    /// Weekend-trip towns.
    pub towns: Vec<Town>,
    /// Holiday destinations.
    pub destinations: Vec<Destination>,
    /// Berlin Tegel (until the 2020-11-08 switch) and Berlin Brandenburg.
    pub home_airports: [PlaceId; 2],
}

/// When Berlin's flights moved from Tegel to BER (2020-11-08, UTC ms).
pub const BER_OPENS_MS: i64 = 1_604_793_600_000;

const SURNAMES: [&str; 24] = [
    "Schulz",
    "Becker",
    "Krüger",
    "Hoffmann",
    "Wagner",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Hartmann",
    "Lange",
    "Werner",
    "Lehmann",
    "Köhler",
    "Maier",
    "Vogel",
    "Jung",
    "Roth",
    "Frank",
    "Berg",
    "Kaiser",
];
const STREETS: [&str; 20] = [
    "Kastanienallee",
    "Schönhauser Allee",
    "Danziger Straße",
    "Sonnenallee",
    "Karl-Marx-Straße",
    "Oranienstraße",
    "Bergmannstraße",
    "Torstraße",
    "Warschauer Straße",
    "Boxhagener Straße",
    "Hermannstraße",
    "Weserstraße",
    "Kollwitzstraße",
    "Greifswalder Straße",
    "Invalidenstraße",
    "Friedrichstraße",
    "Kottbusser Damm",
    "Skalitzer Straße",
    "Prenzlauer Allee",
    "Wiener Straße",
];
const ERRAND_KINDS: [&str; 16] = [
    "Supermarkt",
    "Bäckerei",
    "Café",
    "Restaurant",
    "Bar",
    "Fitnessstudio",
    "Apotheke",
    "Wohnung",
    "Park",
    "Kino",
    "Praxis",
    "Buchhandlung",
    "Baumarkt",
    "Schwimmbad",
    "Bibliothek",
    "Friseur",
];

struct Builder {
    rng: Rng,
    places: Vec<Place>,
}

impl Builder {
    fn add(&mut self, name: String, address: String, pos: (f64, f64), zone: Zone, kind: PlaceKind) -> PlaceId {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut place_id = String::from("ChIJ");
        for _ in 0..23 {
            place_id.push(char::from(ALPHABET[self.rng.index(ALPHABET.len())]));
        }
        self.places.push(Place { name, address, place_id, lat: pos.0, lon: pos.1, zone, kind, iata: None });
        self.places.len() - 1
    }

    fn airport(&mut self, iata: &'static str, name: &str, pos: (f64, f64), zone: Zone) -> PlaceId {
        let id = self.add(name.to_owned(), format!("{name} ({iata})"), pos, zone, PlaceKind::Airport);
        self.places[id].iata = Some(iata);
        id
    }

    fn berlin_address(&mut self) -> String {
        let street = STREETS[self.rng.index(STREETS.len())];
        format!("{street} {}, {} Berlin, Germany", 1 + self.rng.below(140), 10_115 + 5 * self.rng.below(200))
    }

    fn errand_near(&mut self, centre: (f64, f64), spread_m: f64) -> PlaceId {
        let kind = ERRAND_KINDS[self.rng.zipf(ERRAND_KINDS.len(), 0.6)];
        let name = format!("{kind} {}", SURNAMES[self.rng.index(SURNAMES.len())]);
        let pos = offset_m(centre, self.rng.normal() * spread_m, self.rng.normal() * spread_m);
        let address = self.berlin_address();
        self.add(name, address, pos, Zone::Berlin, PlaceKind::Errand)
    }

    fn spots(&mut self, town: &str, centre: (f64, f64), zone: Zone, n: usize, spread_m: f64) -> Vec<PlaceId> {
        const WHAT: [&str; 8] = ["Hotel", "Old Town", "Museum", "Beach", "Market", "Viewpoint", "Harbour", "Garden"];
        (0..n)
            .map(|i| {
                let pos = if i == 0 {
                    offset_m(centre, self.rng.normal() * 300.0, self.rng.normal() * 300.0)
                } else {
                    offset_m(centre, self.rng.normal() * spread_m, self.rng.normal() * spread_m)
                };
                let what = WHAT[i.min(WHAT.len() - 1)];
                let name = if i >= WHAT.len() { format!("{town} {what} {i}") } else { format!("{town} {what}") };
                let address =
                    format!("{} {}, {town}", SURNAMES[self.rng.index(SURNAMES.len())], 1 + self.rng.below(80));
                self.add(name, address, pos, zone, PlaceKind::Away)
            })
            .collect()
    }
}

impl World {
    /// The world of the life with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut b = Builder { rng: Rng::new(seed, 0x5eed_0001), places: Vec::new() };
        let home_a = b.berlin_address();
        let homes = [b.add("Home".into(), home_a, (52.5305, 13.4106), Zone::Berlin, PlaceKind::Home), {
            let a = b.berlin_address();
            b.add("Home".into(), a, (52.4862, 13.4297), Zone::Berlin, PlaceKind::Home)
        }];
        let works = [
            {
                let a = b.berlin_address();
                b.add("Work".into(), a, (52.5074, 13.3903), Zone::Berlin, PlaceKind::Work)
            },
            {
                let a = b.berlin_address();
                b.add("Work".into(), a, (52.5010, 13.4446), Zone::Berlin, PlaceKind::Work)
            },
        ];
        // Errands: ~110 around each home; the second pool keeps 30 city-wide favourites.
        let first: Vec<PlaceId> = (0..110).map(|_| b.errand_near(b_pos(&b, homes[0]), 2_200.0)).collect();
        let mut second: Vec<PlaceId> = first.iter().copied().step_by(3).take(30).collect();
        second.extend((0..80).map(|_| b.errand_near(b_pos(&b, homes[1]), 2_200.0)));
        // Interleave the kept favourites with the new neighbourhood's places.
        let mut order_rng = Rng::new(seed, 0x5eed_0002);
        for i in (1..second.len()).rev() {
            let j = order_rng.index(i + 1);
            second.swap(i, j);
        }
        let towns_def: [(&str, (f64, f64)); 10] = [
            ("Potsdam", (52.3906, 13.0645)),
            ("Lübbenau", (51.8670, 13.9700)),
            ("Heringsdorf", (53.9540, 14.1680)),
            ("Dresden", (51.0504, 13.7373)),
            ("Leipzig", (51.3397, 12.3731)),
            ("Warnemünde", (54.1760, 12.0850)),
            ("Hamburg", (53.5511, 9.9937)),
            ("Waren", (53.5200, 12.6800)),
            ("Wernigerode", (51.8350, 10.7850)),
            ("Lychen", (53.2130, 13.3130)),
        ];
        let towns = towns_def
            .iter()
            .map(|&(name, centre)| Town { name, spots: b.spots(name, centre, Zone::Berlin, 5, 1_500.0) })
            .collect();
        let home_airports = [
            b.airport("TXL", "Berlin Tegel Airport", (52.5597, 13.2877), Zone::Berlin),
            b.airport("BER", "Berlin Brandenburg Airport", (52.3667, 13.5033), Zone::Berlin),
        ];
        let lis = b.airport("LIS", "Lisbon Humberto Delgado Airport", (38.7742, -9.1342), Zone::Lisbon);
        let jfk = b.airport("JFK", "John F. Kennedy International Airport", (40.6413, -73.7781), Zone::NewYork);
        let hnd = b.airport("HND", "Tokyo Haneda Airport", (35.5494, 139.7798), Zone::Tokyo);
        let lax = b.airport("LAX", "Los Angeles International Airport", (33.9416, -118.4085), Zone::LosAngeles);
        let hnl = b.airport("HNL", "Daniel K. Inouye International Airport", (21.3187, -157.9225), Zone::Honolulu);
        let nan = b.airport("NAN", "Nadi International Airport", (-17.7554, 177.4431), Zone::Fiji);
        let tvu = b.airport("TVU", "Matei Airport, Taveuni", (-16.6906, -179.8766), Zone::Fiji);
        let mut destinations = Vec::new();
        for (name, zone, centre, out, back) in [
            ("Lisbon", Zone::Lisbon, (38.7223, -9.1393), vec![lis], vec![lis]),
            ("New York", Zone::NewYork, (40.7580, -73.9855), vec![jfk], vec![jfk]),
            ("Tokyo", Zone::Tokyo, (35.6812, 139.7671), vec![hnd], vec![hnd]),
            ("Honolulu", Zone::Honolulu, (21.2793, -157.8292), vec![lax, hnl], vec![hnl, lax]),
        ] {
            let spots = b.spots(name, centre, zone, 9, 3_000.0);
            destinations.push(Destination {
                name,
                zone,
                out,
                back,
                hotel: spots[0],
                sights: spots[1..].to_vec(),
                summer_only: false,
            });
        }
        // Taveuni straddles the 180° meridian: the hotel is east of it, the
        // Date Line marker and the south-west coast west of it.
        let taveuni: [(&str, (f64, f64)); 6] = [
            ("Matei Beach Resort", (-16.6890, -179.8912)),
            ("International Date Line marker, Waiyevo", (-16.8033, 179.9991)),
            ("Vuna Reef", (-16.9700, 179.8850)),
            ("Bouma Falls", (-16.8160, -179.8540)),
            ("Waitavala Water Slide", (-16.7750, -179.9850)),
            ("Lavena Coastal Walk", (-16.8610, -179.8030)),
        ];
        let ids: Vec<PlaceId> = taveuni
            .iter()
            .map(|&(name, pos)| {
                b.add(name.to_owned(), format!("{name}, Taveuni, Fiji"), pos, Zone::Fiji, PlaceKind::Away)
            })
            .collect();
        destinations.push(Destination {
            name: "Taveuni",
            zone: Zone::Fiji,
            out: vec![hnd, nan, tvu],
            back: vec![tvu, nan, lax],
            hotel: ids[0],
            sights: ids[1..].to_vec(),
            summer_only: true,
        });
        Self { places: b.places, homes, works, errands: [first, second], towns, destinations, home_airports }
    }

    /// The place with id `id`.
    #[must_use]
    pub fn place(&self, id: PlaceId) -> &Place {
        &self.places[id]
    }

    /// The index of the Taveuni destination (antimeridian).
    #[must_use]
    pub fn taveuni(&self) -> usize {
        self.destinations.iter().position(|d| d.summer_only).unwrap_or(0)
    }

    /// The home airport in use at `utc_ms`.
    #[must_use]
    pub fn home_airport(&self, utc_ms: i64) -> PlaceId {
        self.home_airports[usize::from(utc_ms >= BER_OPENS_MS)]
    }
}

fn b_pos(b: &Builder, id: PlaceId) -> (f64, f64) {
    b.places[id].pos()
}
