import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import SyncNode

/// A signed-in user changes their own password (`/password`): the old one, the new one twice. The
/// old one is a guess at the account's password like a login's, so it goes through the same
/// limiter; a change ends every other session of the user (`syncnode user passwd` ends them all).
extension WebInterface {
    func passwordPage(_ lang: Language, problems: [String: String] = [:], error: String? = nil, done: String? = nil) -> (String, [String: Any]) {
        var model: [String: Any] = ["title": lang.labels["changePassword"] ?? ""]
        for (field, problem) in problems { model[field + "Error"] = problem }
        if let error { model["error"] = error }
        if let done { model["done"] = done }
        return ("password", model)
    }

    /// The password form's fields.
    struct PasswordForm: Decodable {
        var old: String?
        var new: String?
        var again: String?
    }

    func changePassword(_ context: WebRequestContext) async throws -> Response {
        let write = try context.write
        let labels = write.visitor.language.labels
        let name = write.session.user.name
        let fields: PasswordForm
        do {
            fields = try write.form.decode(PasswordForm.self)
        } catch {
            return refusal(write.visitor, error.status, error.label, link: "/password")
        }
        let (old, new, again) = (fields.old ?? "", fields.new ?? "", fields.again ?? "")
        func refuse(_ status: HTTPResponse.Status, problems: [String: String] = [:], error: String? = nil) async throws -> Response {
            try await answer(write, status: status) { _, lang in passwordPage(lang, problems: problems, error: error) }
        }
        // The new password's own faults first: they cost no guess at the old one.
        switch WebUser.PasswordProblem(new) {
        case .tooShort: return try await refuse(.unprocessableContent, problems: ["new": labels["passwordShort"] ?? ""])
        case .tooLong: return try await refuse(.unprocessableContent, problems: ["new": labels["passwordLong"] ?? ""])
        case nil: break
        }
        guard new == again else { return try await refuse(.unprocessableContent, problems: ["again": labels["passwordMismatch"] ?? ""]) }

        let address = LoginLimiter.addressKey(context.remoteAddress)
        let attempt: LoginLimiter.Attempt
        switch limiter.begin(name: name, address: address) {
        case .admitted(let admitted): attempt = admitted
        case let refused:
            let (text, wait) = Self.waitMessage(refused, labels)
            return Self.withRetryAfter(wait, try await refuse(.tooManyRequests, error: text))
        }
        let hash = write.session.user.passwordHash
        let verified = try await Self.hashing.admit { try await BlockingWork.run { Bcrypt.verify(old, hash: hash) } }
        guard verified else {
            logger.notice("web password change refused: wrong old password", metadata: ["web.user": "\(name)", "web.address": "\(address)"])
            try await Task.sleep(for: .seconds(1))
            limiter.failed(attempt)
            return try await refuse(.unprocessableContent, problems: ["old": labels["passwordWrong"] ?? ""])
        }
        limiter.succeeded(attempt)
        let newHash = try await Self.hashing.admit { try await BlockingWork.run { Bcrypt.hash(new, cost: WebUser.passwordCost) } }
        let store = store
        let ended = try await BlockingWork.run { [tokenHash = write.tokenHash] in
            try store.setWebUserPassword(name, passwordHash: newHash, keeping: tokenHash)
        }
        guard let ended else {
            // Removed meanwhile (`syncnode user remove`): their session is gone too.
            return message(write.visitor, session: nil, status: .unauthorized, heading: "401", text: labels["expired"] ?? "", link: "/login")
        }
        logger.notice(
            "web password changed", metadata: ["web.user": "\(name)", "web.address": "\(address)", "web.sessions.ended": .stringConvertible(ended)])
        return try await answer(write) { _, lang in passwordPage(lang, done: lang.labels["passwordChanged"]) }
    }
}
