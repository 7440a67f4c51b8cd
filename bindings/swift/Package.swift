// swift-tools-version:5.5
// Ferry for Swift: a system-library module over the C ABI (CFerry) and a thin Swift wrapper (Ferry).
// libferry is found through pkg-config (ferry.pc, installed by `cmake --install`) or linked by the Xcode project.
import PackageDescription

let package = Package(
  name: "Ferry",
  products: [.library(name: "Ferry", targets: ["Ferry"])],
  targets: [
    .systemLibrary(name: "CFerry", path: "Sources/CFerry", pkgConfig: "ferry"),
    .target(name: "Ferry", dependencies: ["CFerry"], path: "Sources/Ferry"),
  ]
)
