// swift-tools-version:5.7
// Ferry for Swift: the C ABI as a Clang module (CFerry) and a Swift wrapper (Ferry). Not compiled in Ferry's Linux
// build; see README.md.
//
// Where libferry comes from:
//   - Ferry.xcframework beside this file (iOS, and macOS apps): a binary target; its Headers carry ferry/ferry.h and
//     a module map declaring the module CFerry (README.md, "Xcode and iOS"). No pkg-config is involved.
//   - otherwise (macOS or Linux desktop, Ferry installed with `cmake --install`): the system library CFerry, found
//     through pkg-config (ferry.pc) — pkg-config cannot serve an iOS app, hence the xcframework.
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let useXCFramework = FileManager.default.fileExists(atPath: here.appendingPathComponent("Ferry.xcframework").path)

let cferry: Target = useXCFramework
  ? .binaryTarget(name: "CFerry", path: "Ferry.xcframework")
  : .systemLibrary(name: "CFerry", path: "Sources/CFerry", pkgConfig: "ferry")

let package = Package(
  name: "Ferry",
  platforms: [.iOS(.v13), .macOS(.v10_15)],
  products: [.library(name: "Ferry", targets: ["Ferry"])],
  targets: [
    cferry,
    .target(name: "Ferry", dependencies: ["CFerry"], path: "Sources/Ferry",
            // libferry's static archive (the xcframework) needs the C++ runtime and the system's zlib.
            linkerSettings: [.linkedLibrary("c++", .when(platforms: [.iOS, .macOS])),
                             .linkedLibrary("z", .when(platforms: [.iOS, .macOS]))]),
  ]
)
