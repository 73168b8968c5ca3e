import { ApiError, session, whoami } from "./api.js";

const form = document.getElementById("signin");
const error = document.getElementById("token-error");
const token = document.getElementById("token");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  token.removeAttribute("aria-invalid");
  const value = token.value.trim();
  if (!value) {
    error.textContent = "Paste a token.";
    token.setAttribute("aria-invalid", "true");
    token.focus();
    return;
  }
  session.save(value, document.getElementById("workspace").value.trim() || null);
  try {
    await whoami();
  } catch (failure) {
    session.clear();
    error.textContent = failure instanceof ApiError && failure.status === 401
      ? "This token is unknown or revoked."
      : `Could not sign in: ${failure.message}`;
    token.setAttribute("aria-invalid", "true");
    token.focus();
    return;
  }
  location.assign("/ui/");
});
token.focus();
