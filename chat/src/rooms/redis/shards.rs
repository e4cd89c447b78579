//! Which Redis a room lives on, when `REDIS_URL` names several.

/// 64-bit FNV-1a of the room id, modulo `count`: not `std`'s hasher, whose keys are random per
/// process, so two replicas would put one room on two shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shards {
    count: usize,
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Shards {
    pub fn new(count: usize) -> Self {
        Self {
            count: count.max(1),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn of(&self, room_id: &str) -> usize {
        let hash = room_id.bytes().fold(FNV_OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
        });
        // The remainder is below `count`, a usize.
        usize::try_from(hash % self.count as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(i: usize) -> String {
        format!("65f1c0ffee0123456789{i:04x}")
    }

    #[test]
    fn one_shard_holds_every_room() {
        let one = Shards::new(1);
        assert!((0..1000).all(|i| one.of(&room(i)) == 0));
        assert_eq!(Shards::new(0), one, "no shards is read as one");
    }

    #[test]
    fn the_choice_is_fixed_by_the_id_alone() {
        // FNV-1a's published values: any process, any build, any replica gets these.
        let shards = Shards::new(usize::MAX);
        assert_eq!(shards.of(""), 0xcbf2_9ce4_8422_2325_u64 as usize);
        assert_eq!(shards.of("a"), 0xaf63_dc4c_8601_ec8c_u64 as usize);
        assert_eq!(shards.of("foobar"), 0x8594_4171_f739_67e8_u64 as usize);
        let two = Shards::new(2);
        let first: Vec<usize> = (0..100).map(|i| two.of(&room(i))).collect();
        let again: Vec<usize> = (0..100).map(|i| Shards::new(2).of(&room(i))).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn rooms_spread_over_every_shard() {
        for count in [2, 3, 5] {
            let shards = Shards::new(count);
            let mut rooms_on = vec![0_usize; count];
            for i in 0..3000 {
                rooms_on[shards.of(&room(i))] += 1;
            }
            let fair = 3000 / count;
            for (shard, rooms) in rooms_on.iter().enumerate() {
                assert!(
                    rooms.abs_diff(fair) < fair / 5,
                    "{count} shards: shard {shard} holds {rooms} of 3000 rooms ({rooms_on:?})"
                );
            }
        }
    }
}
