import Foundation
import Testing

/// Issue 25 (language): a clerk at a Chinese workstation reads what they typed wrong in Chinese,
/// field by field in the plan's words, through the real binary; the exit code is the same, and
/// `SYNCNODE_LANG=en` keeps English.
@Suite struct CLILanguageTests {
    @Test func aChineseLocaleGetsThePlansWordsAndTheSameExitCode() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let lintan = try Federation.hqAndLintan(in: dir).lintan
        let typo = ["add", "--data", lintan, "training", "county=lintan", "attendees=四十", "date=2017-06-01"]
        let english = try Binary.run(typo)
        let chinese = try Binary.run(typo, environment: ["LANG": "zh_CN.UTF-8", "SYNCNODE_LANG": ""])
        #expect(english.status != 0 && chinese.status == english.status, "\(english.status) \(chinese.status)")
        #expect(english.stderr.contains("is not a whole number"), "\(english.stderr)")
        #expect(chinese.stderr.hasPrefix("错误："), "\(chinese.stderr)")
        #expect(chinese.stderr.contains("参训人数：“四十”不是整数，请用阿拉伯数字") && chinese.stderr.contains("主题：必填"), "\(chinese.stderr)")
        #expect(chinese.stderr.contains("未记录任何内容") && !chinese.stderr.contains("attendees"), "\(chinese.stderr)")
        // Plausibility that needs confirmation: the finding and the next step in Chinese.
        let unlikely = try Binary.run(
            ["add", "--data", lintan, "training", "county=lintan", "topic=种植", "attendees=40", "date=2031-06-01"],
            environment: ["LANG": "zh_CN.UTF-8", "SYNCNODE_LANG": ""])
        #expect(unlikely.status != 0 && unlikely.stderr.contains("不在规划年度") && unlikely.stderr.contains("加 --confirm 仍按此记录"), "\(unlikely.stderr)")
        // A record that exists already, added again: said in Chinese too, with the same exit code.
        let zhOnly = ["LANG": "zh_CN.UTF-8", "SYNCNODE_LANG": ""]
        let project = ["add", "--data", lintan, "project", "lt-zh-1", "name=卫生室", "county=lintan", "work_area=health"]
        #expect(try Binary.run(project, environment: zhOnly).status == 0)
        let twiceEn = try Binary.run(project)
        let twice = try Binary.run(project, environment: zhOnly)
        #expect(twice.status == twiceEn.status && twice.status != 0 && twiceEn.stderr.contains("exists already"), "\(twiceEn.stderr)")
        #expect(twice.stderr.contains("项目“lt-zh-1”已存在（卫生室）"), "\(twice.stderr)")
        // The operator's own choice wins over the locale.
        let chosen = try Binary.run(typo, environment: ["LANG": "zh_CN.UTF-8", "SYNCNODE_LANG": "en"])
        #expect(chosen.stderr.contains("is not a whole number") && chosen.status == english.status, "\(chosen.stderr)")
        // Nothing was recorded by any of them.
        #expect(try Binary.run(["ledger", "list", "--data", lintan, "activities", "--json"]).stdout.contains("种植") == false)
    }
}
