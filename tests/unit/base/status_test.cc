#include "lib/base/status.h"

#include <gtest/gtest.h>

#include "lib/wire/http_status.h"

namespace ferry::base {
namespace {

TEST(Status, CodesAreToldApartByCodeNotText) {
  Status s = Status::Corruption("file is not a database");
  EXPECT_TRUE(s.Is(Code::kCorruption));
  EXPECT_FALSE(s.Is(Code::kStorage));
  EXPECT_EQ(s.ToString(), "corruption: file is not a database");
  EXPECT_STREQ(CodeId(Code::kNotFound), "not_found");
  Status a = Status::NotFound("no subject").Annotate("show");
  EXPECT_TRUE(a.Is(Code::kNotFound));
  EXPECT_EQ(a.message(), "show: no subject");
  EXPECT_TRUE(Status::Ok().Annotate("x").ok());
  Status w = Status::Timeout("postgres: canceling statement due to lock timeout").WithMessage("store unavailable");
  EXPECT_TRUE(w.Is(Code::kTimeout));
  EXPECT_EQ(w.message(), "store unavailable");
  EXPECT_TRUE(Status::Ok().WithMessage("x").ok());
}

TEST(Status, OneHttpMapping) {
  EXPECT_EQ(wire::HttpStatusFor(Code::kOk), 200);
  EXPECT_EQ(wire::HttpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(wire::HttpStatusFor(Code::kUnauthenticated), 401);
  EXPECT_EQ(wire::HttpStatusFor(Code::kPermissionDenied), 403);
  EXPECT_EQ(wire::HttpStatusFor(Code::kNotFound), 404);
  EXPECT_EQ(wire::HttpStatusFor(Code::kConflict), 409);
  EXPECT_EQ(wire::HttpStatusFor(Code::kResourceExhausted), 429);
  EXPECT_EQ(wire::HttpStatusFor(Code::kUnavailable), 503);
  EXPECT_EQ(wire::HttpStatusFor(Code::kCorruption), 500);
}

TEST(Status, OneErrorBody) {
  EXPECT_EQ(wire::ErrorBody(Code::kNotFound, "subject not found"),
            R"({"code":"not_found","error":"subject not found"})");
  // Invalid UTF-8 is replaced, not thrown.
  EXPECT_NE(wire::ErrorBody(Code::kInvalidArgument, "bad \xff byte").find("invalid_argument"), std::string::npos);
}

}  // namespace
}  // namespace ferry::base
