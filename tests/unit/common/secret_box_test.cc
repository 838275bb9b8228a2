#include "services/common/crypto/secret_box.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator {
namespace {

using ::testing::HasSubstr;

SecretBox NewBox() {
  auto box = SecretBox::FromBase64Key(GenerateSecretKeyBase64());
  EXPECT_TRUE(box.ok());
  return *box;
}

TEST(SecretBox, RoundTrip) {
  SecretBox box = NewBox();
  std::string sealed = box.Seal("hunter2", "prj_1/DB_PASSWORD");
  EXPECT_EQ(sealed.find("hunter2"), std::string::npos);
  auto opened = box.Open(sealed, "prj_1/DB_PASSWORD");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "hunter2");
}

TEST(SecretBox, SameValueSealsDifferentlyEachTime) {
  SecretBox box = NewBox();
  EXPECT_NE(box.Seal("v", "ad"), box.Seal("v", "ad"));
}

TEST(SecretBox, AnyFlippedByteIsDetected) {
  SecretBox box = NewBox();
  std::string sealed = box.Seal("a secret value", "prj_1/API_KEY");
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] ^= 0x01;
    auto opened = box.Open(tampered, "prj_1/API_KEY");
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }
  EXPECT_EQ(box.Open(sealed.substr(0, 10), "prj_1/API_KEY").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SecretBox, CiphertextMovedToAnotherSecretDoesNotOpen) {
  SecretBox box = NewBox();
  std::string sealed = box.Seal("v", "prj_1/API_KEY");
  EXPECT_EQ(box.Open(sealed, "prj_2/API_KEY").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SecretBox, AnotherKeyDoesNotOpen) {
  std::string sealed = NewBox().Seal("v", "ad");
  EXPECT_EQ(NewBox().Open(sealed, "ad").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SecretBox, KeyMustBe32BytesOfBase64) {
  EXPECT_THAT(SecretBox::FromBase64Key("not base64 !").status().message(), HasSubstr("base64"));
  EXPECT_THAT(SecretBox::FromBase64Key("c2hvcnQ=").status().message(), HasSubstr("32 bytes"));
  EXPECT_TRUE(SecretBox::FromBase64Key(GenerateSecretKeyBase64() + "\n").ok());
}

TEST(TokenHash, StableAndNotTheToken) {
  EXPECT_EQ(HashToken("orc_abc"), HashToken("orc_abc"));
  EXPECT_NE(HashToken("orc_abc"), HashToken("orc_abd"));
  EXPECT_EQ(HashToken("orc_abc").size(), 64u);
  EXPECT_EQ(HashToken("orc_abc").find("abc"), std::string::npos);
}

}  // namespace
}  // namespace orchestrator
