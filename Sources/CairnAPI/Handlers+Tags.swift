import CairnCore
import CloudMapWire

extension CloudMapAPI {
    func tagResource(_ call: Call) async throws(CairnError) -> Output {
        _ = try await submit(.tagResource(arn: try call.required("ResourceARN"), tags: call.tags()), call)
        return .json(.object([:]))
    }

    func untagResource(_ call: Call) async throws(CairnError) -> Output {
        let keys = call.input["TagKeys"]?.stringList ?? []
        _ = try await submit(.untagResource(arn: try call.required("ResourceARN"), keys: keys), call)
        return .json(.object([:]))
    }

    func listTagsForResource(_ call: Call) throws(CairnError) -> Output {
        let tags = try state.tags(ofResource: try call.required("ResourceARN"), in: call.context)
        return .json(.object(["Tags": Render.tags(tags)]))
    }
}
