import Foundation

/// Creates nodes the way operators do: HQ as trust anchor, others enrolled with HQ's key and
/// approved on HQ, all through the real binary.
enum Federation {
    /// `init --role hq`; returns HQ's public key.
    @discardableResult
    static func hq(_ data: String, label: String = "dongli-hq") throws -> String {
        let created = try Binary.run(["init", "--data", data, "--site", "hq", "--role", "hq", "--label", label])
        guard created.status == 0 else { throw TestFailure("init hq failed: \(created.stderr)") }
        return try identity(data)["publicKey"] as? String ?? ""
    }

    /// `init --role ROLE --trust HQ_KEY` on the new node, then `node approve` on HQ.
    static func member(_ data: String, site: String, role: String = "county", label: String? = nil, hq: String) throws {
        let key = try identity(hq)["publicKey"] as? String ?? ""
        var args = ["init", "--data", data, "--site", site, "--role", role, "--trust", key]
        if let label { args += ["--label", label] }
        let created = try Binary.run(args)
        guard created.status == 0 else { throw TestFailure("init \(site) failed: \(created.stderr)") }
        let me = try identity(data)
        let approved = try Binary.run([
            "node", "approve", "--data", hq, me["node"] as? String ?? "", "--key", me["publicKey"] as? String ?? "", "--site", site, "--role", role,
            "--label", me["label"] as? String ?? site,
        ])
        guard approved.status == 0 else { throw TestFailure("approve \(site) failed: \(approved.stderr)") }
    }

    /// HQ and an approved Lintan office (`lintan-1`) under `dir`: their data directories.
    static func hqAndLintan(in dir: TempDirectory) throws -> (hq: String, lintan: String) {
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let lintan = dir.path("lintan").path
        try member(lintan, site: "lintan", label: "lintan-1", hq: hq)
        return (hq, lintan)
    }

    static func identity(_ data: String) throws -> [String: Any] {
        let out = try Binary.run(["identity", "--data", data, "--json"])
        return (try JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any] ?? [:]
    }
}
