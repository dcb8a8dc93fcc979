//! The settings schema: every per-container setting, written once.
//!
//! One table ([`SCHEMA`]) names each setting, its command-line flag, its
//! annotation (`narwhal.NAME`), its CNI netconf key (`NAME`), its
//! environment variable for `narwhal runtime` (`NARWHAL_NAME`), its default
//! and its help text. The clap flags, the annotation and netconf parsers,
//! the man page (generated from clap) and the README's table are all made
//! from it; a unit test keeps the README in step.
//!
//! Values stay raw strings here: their meaning is checked once, in
//! [`crate::spec`].

/// What kind of value a setting takes (for help texts and the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ipv4,
    Ipv6,
    Ifname,
    Mtu,
    /// `true`/`false`; on the command line a flag without a value.
    Bool,
}

impl Kind {
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Ipv4 => "IPV4",
            Kind::Ipv6 => "IPV6",
            Kind::Ifname => "IFACE",
            Kind::Mtu => "SIZE",
            Kind::Bool => "true|false",
        }
    }
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// The name: flag `--NAME`, annotation `narwhal.NAME`, netconf key.
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// The default, as the docs say it (`None`: unset means off/absent).
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// The long description (man page).
    pub doc: &'static str,
    slot: fn(&mut Settings) -> &mut Option<String>,
    get: fn(&Settings) -> &Option<String>,
}

/// Prefix of narwhal's annotations.
pub const ANNOTATION_PREFIX: &str = "narwhal.";
/// Prefix of narwhal's environment variables (`narwhal runtime`).
pub const ENV_PREFIX: &str = "NARWHAL_";

macro_rules! setting {
    ($field:ident, $name:literal, $short:expr, $kind:ident, $default:expr, $help:literal, $doc:literal) => {
        Setting {
            name: $name,
            short: $short,
            kind: Kind::$kind,
            default: $default,
            help: $help,
            doc: $doc,
            slot: |s| &mut s.$field,
            get: |s| &s.$field,
        }
    };
}

/// Every per-container setting, in the order the docs list them.
pub static SCHEMA: &[Setting] = &[
    setting!(ipv4, "ipv4", Some('4'), Ipv4, None, "Container IPv4 address",
        "The container's IPv4 address, bare, without a prefix length (e.g. 198.51.100.7). At least one of narwhal.ipv4 and narwhal.ipv6 is required; without either, narwhal leaves the container alone. Default: no IPv4."
    ),
    setting!(ipv6, "ipv6", Some('6'), Ipv6, None, "Container IPv6 address",
        "The container's IPv6 address, bare, without a prefix length or zone (e.g. 2001:db8::7). Default: no IPv6, and IPv6 is disabled on both ends."
    ),
    setting!(
        host_ipv4,
        "host-ipv4",
        None,
        Ipv4,
        Some("169.254.0.1"),
        "Host IPv4 address (the container's gateway)",
        "The host end's IPv4 address, the container's IPv4 gateway. Only with narwhal.ipv4. Default: 169.254.0.1."
    ),
    setting!(
        host_ipv6,
        "host-ipv6",
        None,
        Ipv6,
        Some("fe80::1"),
        "Host IPv6 address (the container's gateway)",
        "The host end's IPv6 address, the container's IPv6 gateway. Only with narwhal.ipv6. Default: fe80::1."
    ),
    setting!(
        interface,
        "interface",
        Some('i'),
        Ifname,
        Some("eth0"),
        "Container interface name",
        "The name of the container end. Default: eth0."
    ),
    setting!(
        host_interface,
        "host-interface",
        None,
        Ifname,
        Some("nw-KEY"),
        "Host interface name",
        "The name of the host end. It is read at both stages, so poststop finds the link by it. Default: nw-KEY with KEY the OCI container id, see HOST INTERFACE NAME."
    ),
    setting!(mtu, "mtu", None, Mtu, None, "Maximum transmission unit of both ends",
        "The MTU of both ends, 68 to 65535, at least 1280 with IPv6. Default: the kernel's default for veth (1500)."
    ),
    setting!(
        forwarding,
        "forwarding",
        None,
        Bool,
        Some("false"),
        "Forward what the container sends beyond the host (per configured family); without it the host's own forwarding settings decide",
        "true: forward what the container sends to other links of the host, for each configured family, whatever the host's own settings: net.ipv4.conf.IF.forwarding=1 and net.ipv6.conf.IF.force_forwarding=1 on the host end (IPv6 needs Linux 6.17 or later; on older kernels a setup with IPv6 and forwarding fails with a note). false (the default): narwhal sets nothing, and the host's own settings decide (net.ipv4.conf.default.forwarding, net.ipv6.conf.all.forwarding). Packets to the container are routed to it whenever the host forwards on the interface they arrive on."
    ),
    setting!(
        paranoid,
        "paranoid",
        None,
        Bool,
        Some("false"),
        "Accept only IPv4/IPv6 from the container's own MAC and addresses (nftables filter on the host interface)",
        "Install the anti-spoofing filter: an nftables netdev table narwhal-IFACE on the host end whose ingress chain accepts only IPv4/IPv6 from the container's MAC address with its own source addresses and drops everything else (ARP, other ethertypes, forged sources, router advertisements, redirects), and whose egress chain (Linux 5.16 and later) passes only IPv4/IPv6 to the container's own addresses and MAC. Removed with the link. Default: false."
    ),
];

impl Setting {
    pub fn annotation(&self) -> String {
        format!("{ANNOTATION_PREFIX}{}", self.name)
    }

    /// `NARWHAL_HOST_IPV4` for `host-ipv4`.
    pub fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}{}",
            self.name.to_ascii_uppercase().replace(['-', '.'], "_")
        )
    }

    pub fn set(&self, s: &mut Settings, value: String) {
        *(self.slot)(s) = Some(value);
    }

    pub fn get<'a>(&self, s: &'a Settings) -> Option<&'a str> {
        (self.get)(s).as_deref()
    }
}

/// The setting called `name`.
pub fn find(name: &str) -> Option<&'static Setting> {
    SCHEMA.iter().find(|s| s.name == name)
}

/// The setting whose annotation is `key` (`narwhal.NAME`).
pub fn by_annotation(key: &str) -> Option<&'static Setting> {
    key.strip_prefix(ANNOTATION_PREFIX).and_then(find)
}

/// The setting whose environment variable is `var` (`NARWHAL_NAME`).
pub fn by_env(var: &str) -> Option<&'static Setting> {
    SCHEMA.iter().find(|s| s.env_var() == var)
}

/// Every annotation narwhal knows, comma-separated (for error messages).
pub fn known_annotations() -> String {
    SCHEMA
        .iter()
        .map(Setting::annotation)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Raw settings, exactly as given (command-line values, annotation or
/// netconf values). `None`: not given, use the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub host_ipv4: Option<String>,
    pub host_ipv6: Option<String>,
    pub interface: Option<String>,
    pub host_interface: Option<String>,
    pub mtu: Option<String>,
    /// `"true"` / `"false"`; the command-line flag gives `"true"`.
    pub forwarding: Option<String>,
    /// `"true"` / `"false"`: the `--paranoid` filter.
    pub paranoid: Option<String>,
}

impl Settings {
    /// Whether narwhal is asked to do anything (an address is given).
    pub fn wants_network(&self) -> bool {
        self.ipv4.is_some() || self.ipv6.is_some()
    }
}

/// The README's settings table, generated from [`SCHEMA`].
pub fn markdown_table() -> String {
    let mut t = String::from(
        "| option | annotation | CNI netconf key | environment (`narwhal runtime`) | default | meaning |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in SCHEMA {
        let flag = match (s.short, s.kind) {
            (Some(c), Kind::Bool) => format!("`-{c}`, `--{}`", s.name),
            (None, Kind::Bool) => format!("`--{}`", s.name),
            (Some(c), k) => format!("`-{c}`, `--{} {}`", s.name, k.value_name()),
            (None, k) => format!("`--{} {}`", s.name, k.value_name()),
        };
        t.push_str(&format!(
            "| {flag} | `{}` | `{}` | `{}` | {} | {} |\n",
            s.annotation(),
            s.name,
            s.env_var(),
            s.default.map_or("—".to_string(), |d| format!("`{d}`")),
            s.help
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_field_has_one_setting() {
        let mut s = Settings::default();
        for (i, setting) in SCHEMA.iter().enumerate() {
            assert!(SCHEMA[i + 1..].iter().all(|o| o.name != setting.name));
            setting.set(&mut s, format!("v{i}"));
        }
        // every field was reached by exactly one setting
        let all: Vec<&str> = SCHEMA.iter().filter_map(|t| t.get(&s)).collect();
        assert_eq!(all.len(), SCHEMA.len());
        assert_eq!(s.ipv4.as_deref(), Some("v0"));
        assert_eq!(s.paranoid.as_deref(), Some("v8"));
    }

    #[test]
    fn names_map_to_annotations_and_env() {
        let h = find("host-ipv4").unwrap();
        assert_eq!(h.annotation(), "narwhal.host-ipv4");
        assert_eq!(h.env_var(), "NARWHAL_HOST_IPV4");
        assert_eq!(
            by_env("NARWHAL_HOST_INTERFACE").unwrap().name,
            "host-interface"
        );
        assert_eq!(by_annotation("narwhal.mtu").unwrap().name, "mtu");
        assert!(by_annotation("narwhal.ipv44").is_none());
        assert!(by_annotation("other.ipv4").is_none());
    }

    /// The README's table is the generated one, so they cannot drift.
    #[test]
    fn readme_table_matches_the_schema() {
        let readme = include_str!("../README.md");
        let begin = "<!-- settings-table:begin -->\n";
        let end = "<!-- settings-table:end -->";
        let start = readme
            .find(begin)
            .expect("README lacks the settings table markers")
            + begin.len();
        let stop = readme[start..]
            .find(end)
            .expect("README lacks the end marker")
            + start;
        assert_eq!(
            &readme[start..stop],
            markdown_table(),
            "README.md's settings table differs from the schema; paste the output of \
             `cargo run --example gen-assets -- --settings-table`"
        );
    }
}
