import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SyncNode
import SyncProtocol
import SyncWeb
import Testing

/// Issue 26: a project's page shows its photos with who attached them and when; a clerk attaches
/// one from the page (the phone's upload), under the same rules as `syncnode attach`; a file is
/// served as what its own bytes are, and nothing in it may run.
@Suite(.serialized) struct WebAttachmentTests {
    @Test func aClerkAttachesAPhotoFromTheRecordsPageAndEveryoneSeesIt() async throws {
        let web = try WebInterfaceTests.Web()
        defer { web.f.remove() }
        let store = web.node.store
        try Store.$author.withValue("clerk") {
            _ = try store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("name", .text("东丽小学"))])])
        }
        let photo: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let sha = SHA256.hash(data: photo).map { String(format: "%02x", $0) }.joined()
        try await web.app(store).testLive { client in
            var clerk = WebInterfaceTests.Browser(client: client)
            #expect(try await clerk.login("clerk").status == .seeOther)
            let page = String(buffer: try await clerk.get("/record/projects/lt-1").body)
            #expect(page.contains("东丽小学") && page.contains("暂无照片或附件") && page.contains(#"id="attach-form""#))
            guard let range = page.range(of: #"data-csrf="([0-9a-f]{64})""#, options: .regularExpression) else {
                Issue.record("no form token on the page")
                return
            }
            let token = String(page[range].dropFirst(#"data-csrf=""#.count).prefix(64))
            func upload(_ body: [UInt8], token: String?, origin: String = "http://localhost", as browser: WebInterfaceTests.Browser? = nil)
                async throws -> (HTTPResponse.Status, String)
            {
                var headers = (browser ?? clerk).headers(origin: origin)
                if let token { headers[HTTPField.Name("X-Form-Token")!] = token }
                let r = try await client.execute(
                    uri: "/attach/projects/lt-1?caption=%E6%96%BD%E5%B7%A5&name=site.jpg", method: .post, headers: headers,
                    body: ByteBuffer(bytes: body))
                let message = (try? JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: String])?["message"] ?? ""
                return (r.status, message)
            }
            // Refused, with nothing written: no token, a wrong one, another site's page, not a photo, a viewer.
            var viewer = WebInterfaceTests.Browser(client: client)
            _ = try await viewer.login("viewer")
            let before = try store.storedDigest()
            #expect(try await upload(photo, token: nil).0 == .forbidden)
            #expect(try await upload(photo, token: String(repeating: "0", count: 64)).0 == .forbidden)
            #expect(try await upload(photo, token: token, origin: "http://evil.example").0 == .forbidden)
            let text = try await upload(Array("<script>alert(1)</script>".utf8), token: token)
            #expect(text.0 == .unprocessableContent)
            #expect(text.1.contains("只能添加照片"), "\(text.1)")
            #expect(!String(buffer: try await viewer.get("/record/projects/lt-1").body).contains(#"id="attach-form""#))
            #expect(try await upload(photo, token: token, as: viewer).0 == .forbidden)
            #expect(try store.storedDigest() == before)

            // Attached: the page shows it with its caption and who attached it; the file is served as itself.
            let done = try await upload(photo, token: token)
            #expect(done.0 == .ok)
            #expect(done.1.hasPrefix("已添加（事务"), "\(done.1)")
            let after = String(buffer: try await viewer.get("/record/projects/lt-1").body)
            #expect(after.contains(#"<img src="/file/\#(sha)""#))
            #expect(after.contains("施工") && after.contains("clerk"))
            let file = try await viewer.get("/file/\(sha)")
            #expect(file.status == .ok)
            #expect(file.headers[.contentType] == "image/jpeg")
            #expect(file.headers[.contentSecurityPolicy]?.contains("sandbox") == true)
            #expect(Array(buffer: file.body) == photo)
            #expect(try await viewer.get("/file/\(String(repeating: "ab", count: 32))").status == .notFound)
            #expect(try await viewer.get("/file/..%2Fnode.key").status == .notFound)
            #expect(try await viewer.get("/record/projects/no-such").status == .notFound)
            // The projects report links each project to its page, an id in Chinese too.
            try Store.$author.withValue("clerk") {
                _ = try store.commit([.put(collection: "projects", recordID: "lt-东丽 1", fields: [.init("name", .text("东丽二小"))])])
            }
            let report = String(buffer: try await viewer.get("/report/projects").body)
            #expect(report.contains(#"<a href="/record/projects/lt-1">"#))
            #expect(report.contains(#"<a href="/record/projects/lt-%E4%B8%9C%E4%B8%BD%201">"#))
            let chinese = try await clerk.get("/record/projects/lt-%E4%B8%9C%E4%B8%BD%201")
            #expect(chinese.status == .ok && String(buffer: chinese.body).contains("东丽二小"))
            #expect(String(buffer: chinese.body).contains(#"data-action="/attach/projects/lt-%E4%B8%9C%E4%B8%BD%201""#))
            // Without a session: the login, as for every page.
            #expect(try await WebInterfaceTests.Browser(client: client).get("/file/\(sha)").status == .seeOther)
        }
        let listed = try store.attachments(of: "projects", "lt-1")
        #expect(listed.count == 1 && listed.first?.attachedBy == "clerk" && listed.first?.name == "site.jpg" && listed.first?.held == true)
    }
}
