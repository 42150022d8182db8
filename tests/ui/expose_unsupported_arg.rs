struct Store;

#[tether::expose]
impl Store {
    #[method]
    fn show(&self, item: impl std::fmt::Display) -> String {
        item.to_string()
    }

    #[method]
    fn fill(&self, out: &mut String) {
        out.push('x');
    }

    #[method]
    fn len(&self, data: &Vec<u8>) -> usize {
        data.len()
    }
}

fn main() {}
