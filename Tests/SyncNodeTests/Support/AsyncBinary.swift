import Foundation

// The binary's commands for async tests, each waited for on a thread of its own
// (`Binary.runAsync`): an async test that waits for a child process on one of the few
// cooperative threads starves the in-process servers of the tests running beside it.

func jsonOutputAsync(_ args: [String]) async throws -> Any? {
    let r = try await Binary.runAsync(args)
    return try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
}

func recordsAsync(_ data: String, _ collection: String) async throws -> [String: [String: Any]] {
    let list = try await jsonOutputAsync(["record", "list", "--data", data, collection, "--json"]) as? [[String: Any]] ?? []
    return Dictionary(uniqueKeysWithValues: list.map { ($0["id"] as? String ?? "", $0["fields"] as? [String: Any] ?? [:]) })
}

func rejectionsAsync(_ data: String) async throws -> (refused: [[String: Any]], held: [[String: Any]]) {
    let object = try await jsonOutputAsync(["rejections", "--data", data, "--json"]) as? [String: Any] ?? [:]
    return (object["refused"] as? [[String: Any]] ?? [], object["held"] as? [[String: Any]] ?? [])
}

extension ServedNetwork {
    func syncAsync(_ county: String) async throws -> Binary.Result { try await Binary.runAsync(["sync", "--data", self[county]]) }
}

/// `Binary.shell`, waited for on a thread of its own.
func shellAsync(_ script: String) async throws -> Binary.Result {
    try await waitOffThePool { try Binary.shell(script) }
}
