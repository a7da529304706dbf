-- Argo CD health of a ClusterRetentionPolicy: Degraded when its Ready condition is False (the
-- message says why), Healthy otherwise (it has nothing to run; the operator applies it when it
-- prunes).
local hs = {status = "Healthy", message = "applied when the operator prunes"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    if condition.status == "False" then
      hs.status = "Degraded"
      hs.message = condition.message or condition.reason or "not ready"
    else
      hs.message = condition.message or hs.message
    end
  end
end
return hs
