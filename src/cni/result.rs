//! CNI results and errors as JSON, in the version the runtime asked for.
//!
//! Results are built in the 1.x shape; versions before 1.0.0 differ only
//! in the `version` ("4"/"6") each entry of `ips` carries.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::conf::version_at_least;
use super::{CniError, Code};

/// One end of narwhal's veth pair, for the result's `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: String,
    /// Container end: the netns path.
    pub sandbox: Option<String>,
}

/// A container address and its gateway (the host end's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub container: IpAddr,
    pub gateway: IpAddr,
}

fn prefix(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// `prev` (an earlier plugin's result, any version, or none) with
/// narwhal's host and container interfaces, addresses and default routes
/// appended, in the 1.x shape. `dns` (from IPAM) is used when `prev`
/// has none.
pub fn merge(
    prev: Option<&Value>,
    host: &Iface,
    container: &Iface,
    addrs: &[Addr],
    dns: Option<&Value>,
) -> Value {
    let mut r = match prev {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    r.remove("cniVersion");
    let list = |r: &mut Map<String, Value>, k: &str| -> Vec<Value> {
        match r.remove(k) {
            Some(Value::Array(a)) => a,
            _ => vec![],
        }
    };
    let mut interfaces = list(&mut r, "interfaces");
    let mut ips: Vec<Value> = list(&mut r, "ips");
    for ip in &mut ips {
        if let Value::Object(o) = ip {
            o.remove("version");
        }
    }
    let mut routes = list(&mut r, "routes");
    let host_index = interfaces.len();
    interfaces.push(json!({"name": host.name, "mac": host.mac}));
    interfaces
        .push(json!({"name": container.name, "mac": container.mac, "sandbox": container.sandbox}));
    for a in addrs {
        ips.push(json!({
            "address": format!("{}/{}", a.container, prefix(&a.container)),
            "gateway": a.gateway.to_string(),
            "interface": host_index + 1,
        }));
        let dst = if a.container.is_ipv4() {
            "0.0.0.0/0"
        } else {
            "::/0"
        };
        routes.push(json!({"dst": dst, "gw": a.gateway.to_string()}));
    }
    r.insert("interfaces".into(), interfaces.into());
    r.insert("ips".into(), ips.into());
    r.insert("routes".into(), routes.into());
    if !r.contains_key("dns") {
        if let Some(d) = dns {
            r.insert("dns".into(), d.clone());
        }
    }
    r.into()
}

/// `result` (1.x shape) converted to `version`.
pub fn render(result: &Value, version: &str) -> Value {
    let mut r = match result {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if !version_at_least(version, "1.0.0") {
        if let Some(Value::Array(ips)) = r.get_mut("ips") {
            for ip in ips {
                let v6 = ip
                    .get("address")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains(':'));
                if let Value::Object(o) = ip {
                    o.insert("version".into(), (if v6 { "6" } else { "4" }).into());
                }
            }
        }
    }
    r.insert("cniVersion".into(), version.into());
    r.into()
}

/// The addresses of an IPAM result (any version), bare, as text.
pub fn ipam_addresses(result: &Value) -> Result<Vec<String>, CniError> {
    let Some(ips) = result.get("ips").and_then(Value::as_array) else {
        return Ok(vec![]);
    };
    ips.iter()
        .map(|ip| {
            ip.get("address")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    CniError::new(
                        Code::Ipam,
                        "the IPAM result has an entry without \"address\"",
                    )
                })
        })
        .collect()
}

/// The error JSON.
pub fn error(e: &CniError, version: &str) -> Value {
    let mut v = json!({"cniVersion": version, "code": e.code.number(), "msg": e.msg});
    if let Some(d) = &e.details {
        v["details"] = d.clone().into();
    }
    v
}

/// `interfaces` and `ips` of a previous result as narwhal's own entries:
/// the container interface called `ifname` in `sandbox`, and its addresses.
pub fn own_entries<'a>(
    prev: &'a Value,
    ifname: &str,
    sandbox: &str,
) -> (Option<&'a Value>, Vec<&'a Value>) {
    let Some(ifaces) = prev.get("interfaces").and_then(Value::as_array) else {
        return (None, vec![]);
    };
    let Some(idx) = ifaces.iter().position(|i| {
        i.get("name").and_then(Value::as_str) == Some(ifname)
            && i.get("sandbox").and_then(Value::as_str) == Some(sandbox)
    }) else {
        return (None, vec![]);
    };
    let ips = prev
        .get("ips")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|ip| ip.get("interface").and_then(Value::as_u64) == Some(idx as u64))
                .collect()
        })
        .unwrap_or_default();
    (ifaces.get(idx), ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> (Iface, Iface) {
        (
            Iface {
                name: "nw-x".into(),
                mac: "02:00:00:00:00:01".into(),
                sandbox: None,
            },
            Iface {
                name: "eth0".into(),
                mac: "02:00:00:00:00:02".into(),
                sandbox: Some("/run/netns/x".into()),
            },
        )
    }

    #[test]
    fn merge_appends_after_prev_result() {
        let (h, c) = ends();
        let prev = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "lo0"}],
            "ips": [{"version": "4", "address": "198.51.100.200/24", "interface": 0}],
            "dns": {"nameservers": ["198.51.100.53"]}});
        let addrs = [Addr {
            container: "198.51.100.2".parse().unwrap(),
            gateway: "169.254.0.1".parse().unwrap(),
        }];
        let r = merge(Some(&prev), &h, &c, &addrs, None);
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(r["ips"][1]["interface"], 2);
        assert_eq!(r["ips"][1]["address"], "198.51.100.2/32");
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(r["routes"][0]["gw"], "169.254.0.1");
        assert_eq!(r["dns"]["nameservers"][0], "198.51.100.53");
        let old = render(&r, "0.3.1");
        assert_eq!(old["ips"][1]["version"], "4");
        assert_eq!(old["cniVersion"], "0.3.1");
        assert!(render(&r, "1.0.0")["ips"][1].get("version").is_none());
        let (iface, ips) = own_entries(&r, "eth0", "/run/netns/x");
        assert_eq!(iface.unwrap()["mac"], "02:00:00:00:00:02");
        assert_eq!(ips.len(), 1);
    }
}
